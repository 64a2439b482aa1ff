"""Records: the read options (the read flags, declared once), one record as read, and the per-record checks.

From one parsed record to its text and label: the messages schema, flat records, and the checks.

The reference's chat records hold the text in ``messages[1].content`` and the label in
``messages[-1].content``; flat records hold them in named fields. Every check raises
:class:`~m3cls.errors.DataError` naming the record (``where``) and the fix. :mod:`m3cls.data.readers` reads files and
calls these once per record.

Example::

    >>> from m3cls.data.readers import ReadOptions
    >>> fields_of({"text": "hello", "label": 3}, "f.json: record 1", ReadOptions(), "columns", need=True)
    ('hello', '3')
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..errors import DataError


@dataclass
class ReadOptions:
    """Where the text and the label sit in a record: the read flags of every command, declared once here."""

    data_format: str = field(default="auto", metadata={
        "help": "auto (from the extension and content), messages, messages_jsonl, json, jsonl, csv, tsv, txt, "
                "parquet, or datasets (any file type the datasets library reads)."})
    text_column: str = field(default="text", metadata={"help": "Text field in flat records."})
    label_column: str = field(default="label", metadata={"help": "Label field in flat records."})
    text_message_index: int = field(default=1, metadata={"help": "messages[i] holding the text."})
    label_message_index: int = field(default=-1, metadata={"help": "messages[i] holding the label."})
    group_column: str | None = field(default=None, metadata={
        "help": "Record field (top-level, also in messages records) naming its group, e.g. a source document; "
                "records of one group stay on one side of every split."})
    label_separator: str | None = field(default=None, metadata={
        "help": "Split a label string into a label list at this string, e.g. '|' for 'politics|economy' "
                "(multi-label). A JSON list is always a label list."})
    encoding: str | None = field(default=None, metadata={
        "help": "Text encoding of the data file, any codec Python knows (e.g. latin-1, cp1252); default UTF-8 "
                "(a byte-order mark is skipped), and bytes that are not UTF-8 are an error naming their offset."})

    @classmethod
    def resolve(cls, given: dict, saved: dict | None = None) -> "ReadOptions":
        """Flags the user gave (None = not given), else the ones saved with a model, else the defaults."""
        names = [f.name for f in fields(cls)]
        # an encoding belongs to one file, never to the model: a saved one does not carry over
        saved = {k: v for k, v in (saved or {}).items() if k in names and k != "encoding"}
        return cls(**{**saved, **{k: v for k, v in given.items() if k in names and v is not None}})


@dataclass
class TextData:
    """Texts read from one file, with their labels when the file has them."""

    texts: list[str]
    labels: list[str] | None
    path: str
    groups: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int], path: str | None = None) -> "TextData":
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        groups = None if self.groups is None else [self.groups[i] for i in indices]
        return TextData([self.texts[i] for i in indices], labels, path or self.path, groups)


@dataclass(frozen=True)
class Item:
    """One record as read: where it is, its position in the input, its text and label, or why it is bad.

    ``position`` counts records from 0 in input order: the line for ``.txt`` and JSONL (line number - 1), the
    element of a JSON array, the data row after the header in CSV/TSV. Every line or row is a record, blank ones
    included, so ``position`` is the same whether or not earlier records were bad. ``error`` is set (and
    ``text`` is None) only for a bad record read with ``iter_items(..., keep_bad=True)``.
    """

    where: str
    text: str | None
    label: str | None
    position: int = 0
    error: str | None = None
    group: str | None = None



def schema_of(record: object, schema: str) -> str:
    """The schema ("messages" or "columns") the first record shows, unless it was given (not "auto")."""
    if schema != "auto":
        return schema
    return "messages" if isinstance(record, dict) and "messages" in record else "columns"


def fields_of(record: object, where: str, options: ReadOptions, schema: str, need: bool) -> tuple[str, str | None]:
    """(text, label) of one JSON record; label None when the record has none and none is needed."""
    if not isinstance(record, dict):
        raise DataError(f"{where} is a JSON {kind_of(record)}, expected an object")
    if schema == "messages":
        return _from_messages(record, where, options, need)
    return _from_columns(record, where, options, need)


def _from_messages(record: dict, where: str, options: ReadOptions, need: bool) -> tuple[str, str | None]:
    messages = record.get("messages")
    if messages is None:
        raise DataError(f"{where} has no 'messages' field; expected {{\"messages\": [...]}} like the other "
                        f"records (for flat text/label records use --data_format json or jsonl)")
    if not isinstance(messages, list):
        raise DataError(f"{where}: 'messages' is a JSON {kind_of(messages)}, expected a list of messages")
    t_index, l_index = options.text_message_index, options.label_message_index
    text = check_text(_content(messages, t_index, where, "--text_message_index"), where,
                       f"messages[{t_index}].content")
    if not need and not -len(messages) <= l_index < len(messages):
        return text, None
    if l_index % len(messages) == t_index % len(messages):
        if not need:
            return text, None
        raise DataError(f"{where} has {len(messages)} messages, so messages[{t_index}] (text) and "
                        f"messages[{l_index}] (label) are the same message; add the label message or set "
                        f"--label_message_index")
    label = check_label(_content(messages, l_index, where, "--label_message_index"), where,
                        f"messages[{l_index}].content", strict=True, separator=options.label_separator)
    return text, label


def _content(messages: list, index: int, where: str, flag: str) -> object:
    if not -len(messages) <= index < len(messages):
        raise DataError(f"{where} has {len(messages)} message(s), too few for {flag} {index}; fix the record "
                        f"or the flag")
    message = messages[index]
    if not isinstance(message, dict) or "content" not in message:
        raise DataError(f"{where}: messages[{index}] has no 'content'; expected {{\"role\": ..., "
                        f"\"content\": ...}}")
    return message["content"]


def _from_columns(record: dict, where: str, options: ReadOptions, need: bool) -> tuple[str, str | None]:
    if options.text_column not in record:
        raise DataError(f"{where} has no {options.text_column!r} field (fields: {', '.join(map(str, record))}); "
                        f"name the text field with --text_column")
    text = check_text(record[options.text_column], where, f"field {options.text_column!r}")
    if options.label_column not in record:
        if need:
            raise DataError(f"{where} has no {options.label_column!r} field (fields: "
                            f"{', '.join(map(str, record))}); name the label field with --label_column")
        return text, None
    return text, check_label(record[options.label_column], where, f"field {options.label_column!r}",
                             separator=options.label_separator)


def check_text(value: object, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} is {describe(value)}, expected a non-empty string of text")
    if not value.strip():
        raise DataError(f"{where}: {what} is empty; remove the record or fill in its text")
    return value


def check_label(value: object, where: str, what: str, strict: bool = False,
                separator: str | None = None) -> str | tuple | float:
    """Labels are non-empty strings; flat formats also accept whole numbers (common in HF datasets).

    A JSON list (or, with ``separator``, a delimited string) is a label list, a tuple; a JSON fraction in a flat
    format is a float. :mod:`m3cls.tasks.targets` checks them against the task.
    """
    if isinstance(value, list) or (separator and isinstance(value, str)):
        from ..tasks.targets import label_list

        return label_list(value, where, what, separator)
    if not strict and isinstance(value, float):
        return value
    if not strict and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: label {what} is {describe(value)}, expected a non-empty string such as "
                        f"\"Human\"")
    if not value.strip():
        raise DataError(f"{where}: label {what} is empty; every training record needs a label name")
    return value.strip()


def kind_of(value: object) -> str:
    return {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    return "missing (null)" if value is None else f"a JSON {kind_of(value)} ({str(value)[:30]!r})"


def group_of(record: dict, options: ReadOptions, where: str) -> str | None:
    """The record's group (``--group_column``) as text; a record without one is an error."""
    if not options.group_column:
        return None
    value = record.get(options.group_column)
    if value is None or isinstance(value, (dict, list)) or not str(value).strip():
        raise DataError(f"{where} has no usable {options.group_column!r} field ({describe(value)}); give every "
                        f"record a group, or drop --group_column")
    return str(value)

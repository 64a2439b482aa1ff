"""Read text (and labels) from the reference messages format, JSON/JSONL, CSV/TSV or plain text.

The reference workflow feeds a JSON array of chat records; the text is ``messages[1].content`` and the label
``messages[-1].content``. m3cls reads that, the same records one per line (JSONL), and flat records with
``text``/``label`` fields in JSON, JSONL, CSV or TSV. Plain ``.txt`` files (one text per line) are accepted
where no labels are needed. Every problem raises :class:`~m3cls.errors.DataError` naming the file and record.

This module never imports torch, so inspecting data stays fast.

Example::

    >>> from m3cls.data import ReadOptions, read_labeled
    >>> data = read_labeled("train.json", ReadOptions())            # doctest: +SKIP
    >>> data.texts[0], data.labels[0]                               # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from typing import IO, Iterator

from .errors import ConfigError, DataError

#: ``--data_format`` values; ``auto`` detects from the extension and the content.
FORMATS = ("auto", "messages", "messages_jsonl", "json", "jsonl", "csv", "tsv", "txt")
_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
               ".txt": "txt"}
csv.field_size_limit(2**31 - 1)


@dataclass
class ReadOptions:
    """Where the text and the label sit in a record: the read flags of every command, declared once here."""

    data_format: str = field(default="auto", metadata={
        "help": "auto (from the extension and content), messages, messages_jsonl, json, jsonl, csv, tsv or txt."})
    text_column: str = field(default="text", metadata={"help": "Text field in flat records."})
    label_column: str = field(default="label", metadata={"help": "Label field in flat records."})
    text_message_index: int = field(default=1, metadata={"help": "messages[i] holding the text."})
    label_message_index: int = field(default=-1, metadata={"help": "messages[i] holding the label."})
    label_separator: str | None = field(default=None, metadata={
        "help": "Split a label string into a label list at this string, e.g. '|' for 'politics|economy' "
                "(multi-label). A JSON list is always a label list."})

    @classmethod
    def resolve(cls, given: dict, saved: dict | None = None) -> "ReadOptions":
        """Flags the user gave (None = not given), else the ones saved with a model, else the defaults."""
        names = [f.name for f in fields(cls)]
        saved = {k: v for k, v in (saved or {}).items() if k in names}
        return cls(**{**saved, **{k: v for k, v in given.items() if k in names and v is not None}})


@dataclass
class TextData:
    """Texts read from one file, with their labels when the file has them."""

    texts: list[str]
    labels: list[str] | None
    path: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int], path: str | None = None) -> "TextData":
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return TextData([self.texts[i] for i in indices], labels, path or self.path)


@dataclass(frozen=True)
class Item:
    """One record as read: its place in the file (for messages), its text and its label (or None)."""

    where: str
    text: str
    label: str | None


def read_labeled(path: str, options: ReadOptions = ReadOptions()) -> TextData:
    """Read a whole file whose every record must carry a label."""
    texts, labels = [], []
    for item in iter_items(path, options, need_labels=True):
        texts.append(item.text)
        labels.append(item.label)
    if not texts:
        raise DataError(f"{path}: no records found; expected at least one text with a label")
    return TextData(texts, labels, path)


def iter_items(path: str, options: ReadOptions = ReadOptions(), need_labels: bool = False) -> Iterator[Item]:
    """Yield records one at a time, so a file of millions of lines is read in bounded memory.

    ``path`` may be ``-`` for standard input. JSON arrays are necessarily parsed whole.
    """
    if options.data_format not in FORMATS:
        raise ConfigError(f"--data_format {options.data_format!r} is not one of: {', '.join(FORMATS)}")
    stream = _open(path)
    try:
        first, stream = _peek(stream, path)
        container, schema = _detect(path, options.data_format, first)
        if container == "txt" and need_labels:
            raise DataError(f"{path}: a plain text file has no labels; use JSON, JSONL, CSV or TSV with a "
                            f"label field")
        yield from _ITERATORS[container](stream, path, options, schema, need_labels)
    finally:
        if stream is not sys.stdin:
            stream.close()


def _open(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found; check the path")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a data file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: file is empty; expected records")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


def _peek(stream: IO[str], path: str) -> tuple[str, IO[str]]:
    """Return the first non-blank character and a stream that still starts at the beginning."""
    head = []
    for line in stream:
        head.append(line)
        if line.strip():
            rest = _Chain(head, stream)
            return line.strip()[0], rest
    raise DataError(f"{path}: file holds only blank lines; expected records")


class _Chain(io.TextIOBase):
    """A read-only text stream: some lines already read, then the rest of the original stream."""

    def __init__(self, head: list[str], tail: IO[str]):
        self._lines = itertools.chain(head, tail)
        self._tail = tail

    def __iter__(self):
        return self._lines

    def __next__(self) -> str:
        return next(self._lines)

    def read(self, size: int = -1) -> str:
        return "".join(self._lines)

    def close(self) -> None:
        if self._tail is not sys.stdin:
            self._tail.close()


def _detect(path: str, data_format: str, first_char: str) -> tuple[str, str]:
    """Return (container, schema); schema is 'messages', 'columns' or 'auto' (decided by the first record)."""
    if data_format == "messages":
        return "json", "messages"
    if data_format == "messages_jsonl":
        return "jsonl", "messages"
    if data_format != "auto":
        return data_format, "columns"
    ext = os.path.splitext(path)[1].lower()
    container = _EXTENSIONS.get(ext)
    if container in ("json", "jsonl", None):
        if first_char == "[":
            container = "json"
        elif first_char == "{":
            container = container or "jsonl"  # .json stays JSON: one object is "not a list", several are JSONL
        elif container is None:
            container = "txt"
        else:
            raise DataError(f"{path}: expected JSON (a list of records, or one object per line) but the file "
                            f"starts with {first_char!r}; check the file or set --data_format")
    return container, "auto"


def _iter_json(stream: IO[str], path: str, options: ReadOptions, schema: str, need: bool) -> Iterator[Item]:
    text = stream.read()
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg.startswith("Extra data") and text.lstrip().startswith("{"):
            yield from _iter_jsonl(io.StringIO(text), path, options, schema, need)
            return
        raise DataError(f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg}); the file may be "
                        f"truncated or damaged") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: the top level is a JSON {_kind(records)}, expected a list of records "
                        f"like [{{\"messages\": [...]}}, ...]")
    schema = _schema(records[0], schema) if records else schema
    for number, record in enumerate(records, 1):
        yield _item(record, f"{path}: record {number}", options, schema, need)


def _iter_jsonl(stream: IO[str], path: str, options: ReadOptions, schema: str, need: bool) -> Iterator[Item]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {number} is not valid JSON ({e.msg}); each line of a JSONL file must "
                            f"be one complete JSON object") from None
        if schema == "auto":
            schema = _schema(record, schema)
        yield _item(record, f"{path}: line {number}", options, schema, need)


def _iter_table(stream: IO[str], path: str, options: ReadOptions, delimiter: str, need: bool) -> Iterator[Item]:
    reader = csv.DictReader(stream, delimiter=delimiter)
    fields = reader.fieldnames or []
    if options.text_column not in fields:
        raise DataError(f"{path}: no column {options.text_column!r} in the header (columns: "
                        f"{', '.join(fields) or 'none'}); name the text column with --text_column")
    has_label = options.label_column in fields
    if need and not has_label:
        raise DataError(f"{path}: no column {options.label_column!r} in the header (columns: "
                        f"{', '.join(fields)}); name the label column with --label_column")
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        text = _check_text(row.get(options.text_column), where, f"column {options.text_column!r}")
        label = _check_label(row.get(options.label_column), where, f"column {options.label_column!r}",
                             separator=options.label_separator) if has_label else None
        yield Item(where, text, label)


def _iter_txt(stream: IO[str], path: str, options: ReadOptions, schema: str, need: bool) -> Iterator[Item]:
    for number, line in enumerate(stream, 1):
        line = line.rstrip("\r\n")
        if line.strip():
            yield Item(f"{path}: line {number}", line, None)


_ITERATORS = {
    "json": _iter_json,
    "jsonl": _iter_jsonl,
    "csv": lambda s, p, o, schema, need: _iter_table(s, p, o, ",", need),
    "tsv": lambda s, p, o, schema, need: _iter_table(s, p, o, "\t", need),
    "txt": _iter_txt,
}


def _schema(record: object, schema: str) -> str:
    if schema != "auto":
        return schema
    return "messages" if isinstance(record, dict) and "messages" in record else "columns"


def _item(record: object, where: str, options: ReadOptions, schema: str, need: bool) -> Item:
    if not isinstance(record, dict):
        raise DataError(f"{where} is a JSON {_kind(record)}, expected an object")
    if schema == "messages":
        return _from_messages(record, where, options, need)
    return _from_columns(record, where, options, need)


def _from_messages(record: dict, where: str, options: ReadOptions, need: bool) -> Item:
    messages = record.get("messages")
    if messages is None:
        raise DataError(f"{where} has no 'messages' field; expected {{\"messages\": [...]}} like the other "
                        f"records (for flat text/label records use --data_format json or jsonl)")
    if not isinstance(messages, list):
        raise DataError(f"{where}: 'messages' is a JSON {_kind(messages)}, expected a list of messages")
    t_index, l_index = options.text_message_index, options.label_message_index
    text = _check_text(_content(messages, t_index, where, "--text_message_index"), where,
                       f"messages[{t_index}].content")
    if not need and not -len(messages) <= l_index < len(messages):
        return Item(where, text, None)
    if l_index % len(messages) == t_index % len(messages):
        if not need:
            return Item(where, text, None)
        raise DataError(f"{where} has {len(messages)} messages, so messages[{t_index}] (text) and "
                        f"messages[{l_index}] (label) are the same message; add the label message or set "
                        f"--label_message_index")
    label = _check_label(_content(messages, l_index, where, "--label_message_index"), where,
                         f"messages[{l_index}].content", strict=True, separator=options.label_separator)
    return Item(where, text, label)


def _content(messages: list, index: int, where: str, flag: str) -> object:
    if not -len(messages) <= index < len(messages):
        raise DataError(f"{where} has {len(messages)} message(s), too few for {flag} {index}; fix the record "
                        f"or the flag")
    message = messages[index]
    if not isinstance(message, dict) or "content" not in message:
        raise DataError(f"{where}: messages[{index}] has no 'content'; expected {{\"role\": ..., "
                        f"\"content\": ...}}")
    return message["content"]


def _from_columns(record: dict, where: str, options: ReadOptions, need: bool) -> Item:
    if options.text_column not in record:
        raise DataError(f"{where} has no {options.text_column!r} field (fields: {', '.join(map(str, record))}); "
                        f"name the text field with --text_column")
    text = _check_text(record[options.text_column], where, f"field {options.text_column!r}")
    if options.label_column not in record:
        if need:
            raise DataError(f"{where} has no {options.label_column!r} field (fields: "
                            f"{', '.join(map(str, record))}); name the label field with --label_column")
        return Item(where, text, None)
    return Item(where, text, _check_label(record[options.label_column], where, f"field {options.label_column!r}",
                                          separator=options.label_separator))


def _check_text(value: object, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} is {_describe(value)}, expected a non-empty string of text")
    if not value.strip():
        raise DataError(f"{where}: {what} is empty; remove the record or fill in its text")
    return value


def _check_label(value: object, where: str, what: str, strict: bool = False,
                 separator: str | None = None) -> str | tuple | float:
    """Labels are non-empty strings; flat formats also accept whole numbers (common in HF datasets).

    A JSON list (or, with ``separator``, a delimited string) is a label list, a tuple; a JSON fraction in a flat
    format is a float. :mod:`m3cls.tasks` checks them against the task.
    """
    if isinstance(value, list) or (separator and isinstance(value, str)):
        from .tasks import label_list

        return label_list(value, where, what, separator)
    if not strict and isinstance(value, float):
        return value
    if not strict and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: label {what} is {_describe(value)}, expected a non-empty string such as "
                        f"\"Human\"")
    if not value.strip():
        raise DataError(f"{where}: label {what} is empty; every training record needs a label name")
    return value.strip()


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _describe(value: object) -> str:
    return "missing (null)" if value is None else f"a JSON {_kind(value)} ({str(value)[:30]!r})"


def stratified_split(data: TextData, fraction: float, seed: int) -> tuple[TextData, TextData]:
    """Split off ``fraction`` of every class for validation, reproducibly for a given seed."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--validation_split {fraction} must be between 0 and 1 (for example 0.1)")
    if data.labels is None:
        raise DataError(f"{data.path}: cannot split data without labels")
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(data.labels):
        by_label[label].append(index)
    rng = random.Random(seed)
    held_out: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        k = min(max(1, round(len(indices) * fraction)), len(indices) - 1)
        held_out.update(indices[:k])
    if not held_out:
        raise DataError(f"{data.path}: too few records to split off a validation set ({len(data)} records); "
                        f"add data or give --validation_path")
    train = [i for i in range(len(data)) if i not in held_out]
    return data.subset(train), data.subset(sorted(held_out), f"{data.path} (validation split)")


def class_counts(labels: list[str]) -> dict[str, int]:
    """Records per label, in label order."""
    return dict(sorted(Counter(labels).items()))

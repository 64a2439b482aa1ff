"""Read text (and labels) from the reference messages format, JSON/JSONL, CSV/TSV or plain text.

The reference workflow feeds a JSON array of chat records; the text is ``messages[1].content`` and the label
``messages[-1].content``. m3cls reads that, the same records one per line (JSONL), and flat records with
``text``/``label`` fields in JSON, JSONL, CSV or TSV. Plain ``.txt`` files (one text per line) are accepted
where no labels are needed. Every problem raises :class:`~m3cls.errors.DataError` naming the file and record;
for prediction, ``iter_items(..., keep_bad=True)`` marks bad records instead, so the caller can skip them. Every
format is streamed, JSON arrays included (:mod:`m3cls.data.jsonstream`).

This module never imports torch, so inspecting data stays fast.

Example::

    >>> from m3cls.data.readers import ReadOptions, read_labeled
    >>> data = read_labeled("train.json", ReadOptions())            # doctest: +SKIP
    >>> data.texts[0], data.labels[0]                               # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import random
import sys
from collections import Counter, defaultdict
from typing import IO, Iterator

from ..errors import ConfigError, DataError
from .jsonstream import JsonSyntaxError, NotAnArray, iter_array
from .records import Item, ReadOptions, TextData, check_label, check_text, fields_of, group_of, schema_of

#: ``--data_format`` values; ``auto`` detects from the extension and the content.
FORMATS = ("auto", "messages", "messages_jsonl", "json", "jsonl", "csv", "tsv", "txt", "parquet", "datasets")
_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
               ".txt": "txt"}
csv.field_size_limit(2**31 - 1)


def read_labeled(path: str, options: ReadOptions = ReadOptions()) -> TextData:
    """Read a whole file whose every record must carry a label; the first bad record raises ``DataError``."""
    texts, labels, groups = [], [], []
    for item in iter_items(path, options, need_labels=True):
        texts.append(item.text)
        labels.append(item.label)
        groups.append(item.group)
    if not texts:
        raise DataError(f"{path}: no records found; expected at least one text with a label")
    return TextData(texts, labels, path, groups if options.group_column else None)


def iter_items(path: str, options: ReadOptions = ReadOptions(), need_labels: bool = False,
               keep_bad: bool = False) -> Iterator[Item]:
    """Yield records one at a time, so a file of millions of records is read in bounded memory.

    ``path`` may be ``-`` for standard input. A bad record (an empty or non-string text, a missing field, a
    JSONL line that is not JSON, a CSV row with the wrong number of fields, a blank line) raises
    ``DataError``, or with ``keep_bad`` comes as an ``Item`` whose ``error`` says why, so the caller decides.
    A problem with the file as a whole (not found, not a list, a syntax error inside a JSON array) always raises.
    """
    if options.data_format not in FORMATS:
        raise ConfigError(f"--data_format {options.data_format!r} is not one of: {', '.join(FORMATS)}")
    from . import sources

    if sources.handles(path, options.data_format):
        yield from sources.iter_items(path, options, need_labels, keep_bad)
        return
    name = "stdin" if path == "-" else path
    stream = _open(path, options.encoding)
    try:
        first, chain = _peek(stream, name)
        container, schema = _detect(path, options.data_format, first)
        if container == "txt" and need_labels:
            raise DataError(f"{name}: a plain text file has no labels; use JSON, JSONL, CSV or TSV with a "
                            f"label field")
        if container == "json" and first == "{" and _looks_like_jsonl(chain):
            container = "jsonl"
        yield from _ITERATORS[container](chain, name, options, schema, need_labels, keep_bad)
    except UnicodeDecodeError as e:
        raise DataError(_decode_problem(path, options.encoding, e)) from None
    finally:
        if stream is not sys.stdin:
            stream.close()


def _open(path: str, encoding: str | None = None) -> IO[str]:
    """The file as text: UTF-8 (a byte-order mark skipped) unless ``encoding`` names another codec; bytes the
    codec cannot decode raise UnicodeDecodeError while reading (never replaced: that would corrupt texts)."""
    codec = _codec(encoding)
    if path == "-":
        return sys.stdin if encoding is None else io.TextIOWrapper(sys.stdin.buffer, encoding=codec, newline="")
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found; check the path")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a data file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: file is empty; expected records")
    return open(path, encoding=codec, newline="")


def _codec(encoding: str | None) -> str:
    """The codec to open with: UTF-8 with its byte-order mark skipped, or the named codec."""
    if encoding is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"--encoding {encoding!r}: not a text encoding Python knows; give one such as utf-8, "
                          f"latin-1 or cp1252") from None
    return "utf-8-sig" if name == "utf-8" else name


def _decode_problem(path: str, encoding: str | None, error: UnicodeDecodeError) -> str:
    """One line naming the file, the first byte the codec cannot read, and the fix."""
    codec = _codec(encoding)
    where = "" if path == "-" else f" at byte {_first_bad_byte(path, codec)}"
    label = "UTF-8" if encoding is None else encoding
    fix = ("convert the file to UTF-8, or pass --encoding NAME (e.g. latin-1, cp1252)" if encoding is None
           else "check --encoding")
    return f"{'stdin' if path == '-' else path}: not valid {label}{where} ({error.reason}); {fix}"


def _first_bad_byte(path: str, codec: str) -> int:
    """The file offset of the first byte ``codec`` cannot decode (read again in 1 MiB chunks, only on error)."""
    decoder, offset = codecs.getincrementaldecoder(codec)(), 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                return offset - pending + e.start
            if not chunk:
                return offset
            offset += len(chunk)


def _peek(stream: IO[str], name: str) -> tuple[str, "_Chain"]:
    """The first non-blank character, and a stream that still starts at the beginning (read in chunks, so a
    one-line JSON array of any size is never read whole here)."""
    head = ""
    while chunk := stream.read(_PEEK_CHUNK):
        head += chunk
        start = head.lstrip()
        if start:
            return start[0], _Chain(head, stream)
    raise DataError(f"{name}: file holds only blank lines; expected records")


_PEEK_CHUNK = 4096


class _Chain:
    """The input after peeking: the text already read (``head``), then the rest of the stream.

    JSON arrays read it in chunks (``read``); line formats iterate over its lines.
    """

    def __init__(self, head: str, tail: IO[str]):
        self._head, self._tail = head, tail

    def read(self, size: int = -1) -> str:
        if size is None or size < 0:
            text, self._head = self._head + self._tail.read(), ""
            return text
        if self._head:
            text, self._head = self._head[:size], self._head[size:]
            return text
        return self._tail.read(size)

    def head_lines(self, wanted: int) -> list[str]:
        """The first ``wanted`` non-blank lines (fewer at the end), kept for later reading."""
        while True:
            self._complete_line()
            lines = [line for line in io.StringIO(self._head, newline="") if line.strip()]
            more = self._tail.readline() if len(lines) < wanted else ""
            if not more:
                return lines[:wanted]
            self._head += more

    def _complete_line(self) -> None:
        """Make the head end where a line ends (a CR-LF pair split by a chunk is joined)."""
        while self._head and not self._head.endswith("\n") and (more := self._tail.readline()):
            self._head += more

    def __iter__(self) -> Iterator[str]:
        self._complete_line()
        head, self._head = self._head, ""
        yield from io.StringIO(head, newline="")
        yield from self._tail


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


def _looks_like_jsonl(chain: _Chain) -> bool:
    """A JSON file that starts with '{' holds JSONL when its first line is one whole object and more follow."""
    lines = chain.head_lines(2)
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except json.JSONDecodeError:
        return False


def _bad(error: DataError, where: str, position: int, keep_bad: bool) -> Item:
    """A bad record as a marked Item with ``keep_bad``; otherwise its error is raised (training stays strict)."""
    if not keep_bad:
        raise error
    return Item(where, None, None, position, str(error))


def _iter_json(stream: _Chain, path: str, options: ReadOptions, schema: str, need: bool,
               keep_bad: bool) -> Iterator[Item]:
    try:
        for position, record in enumerate(iter_array(stream)):
            where = f"{path}: record {position + 1}"
            schema = schema_of(record, schema)
            yield _record_item(record, where, position, options, schema, need, keep_bad)
    except JsonSyntaxError as e:
        raise DataError(f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg}); the file may be "
                        f"truncated or damaged") from None
    except NotAnArray as e:
        raise DataError(f"{path}: the top level is a JSON {e.kind}, expected a list of records like "
                        f"[{{\"messages\": [...]}}, ...]") from None


def _iter_jsonl(stream: _Chain, path: str, options: ReadOptions, schema: str, need: bool,
                keep_bad: bool) -> Iterator[Item]:
    for position, line in enumerate(stream):
        where = f"{path}: line {position + 1}"
        try:
            record = _json_line(line, where)
            schema = schema_of(record, schema)
        except DataError as e:
            yield _bad(e, where, position, keep_bad)
            continue
        yield _record_item(record, where, position, options, schema, need, keep_bad)


def _record_item(record, where: str, position: int, options: ReadOptions, schema: str, need: bool,
                 keep_bad: bool) -> Item:
    """One parsed JSON record as an Item: its text, label and group, or a bad item (or the error) if they do not
    fit."""
    try:
        text, label = fields_of(record, where, options, schema, need)
        group = group_of(record, options, where) if need else None
    except DataError as e:
        return _bad(e, where, position, keep_bad)
    return Item(where, text, label, position, group=group)


def _json_line(line: str, where: str) -> object:
    if not line.strip():
        raise DataError(f"{where} is blank; each line of a JSONL file must be one JSON object -- remove the line")
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where} is not valid JSON ({e.msg}); each line of a JSONL file must be one complete "
                        f"JSON object") from None


def _iter_table(stream: _Chain, path: str, options: ReadOptions, delimiter: str, need: bool,
                keep_bad: bool) -> Iterator[Item]:
    reader = csv.reader(stream, delimiter=delimiter)
    rows = _table_rows(reader, path)
    header = next((row for row in rows if row), [])
    if options.text_column not in header:
        raise DataError(f"{path}: no column {options.text_column!r} in the header (columns: "
                        f"{', '.join(header) or 'none'}); name the text column with --text_column")
    has_label = options.label_column in header
    if need and not has_label:
        raise DataError(f"{path}: no column {options.label_column!r} in the header (columns: "
                        f"{', '.join(header)}); name the label column with --label_column")
    columns = (header.index(options.text_column), header.index(options.label_column) if has_label else None)
    for position, row in enumerate(rows):
        where = f"{path}: line {reader.line_num}"
        try:
            text, label = _row_fields(row, header, columns, where, options)
            group = group_of(dict(zip(header, row)), options, where) if need and options.group_column else None
        except DataError as e:
            yield _bad(e, where, position, keep_bad)
            continue
        yield Item(where, text, label, position, group=group)


def _table_rows(reader, path: str) -> Iterator[list[str]]:
    """The reader's rows; a file the csv module cannot parse at all is one error naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}: line {reader.line_num} cannot be read as CSV/TSV ({e}); check the quoting "
                            f"or set --data_format") from None


def _row_fields(row: list[str], header: list[str], columns: tuple[int, int | None], where: str,
                options: ReadOptions) -> tuple[str, str | None]:
    if not row:
        raise DataError(f"{where} is blank; expected a row of {len(header)} fields -- remove the line")
    if len(row) != len(header):
        raise DataError(f"{where} has {len(row)} field(s) but the header has {len(header)}; quote a field that "
                        f"holds the delimiter or a line break")
    text_at, label_at = columns
    text = check_text(row[text_at], where, f"column {options.text_column!r}")
    if label_at is None:
        return text, None
    return text, check_label(row[label_at], where, f"column {options.label_column!r}",
                             separator=options.label_separator)


def _iter_txt(stream: _Chain, path: str, options: ReadOptions, schema: str, need: bool,
              keep_bad: bool) -> Iterator[Item]:
    for position, line in enumerate(stream):
        where = f"{path}: line {position + 1}"
        text = line.rstrip("\r\n")
        if text.strip():
            yield Item(where, text, None, position)
        else:
            yield _bad(DataError(f"{where} is blank; every line of a plain text input is one text -- remove the "
                                 f"line"), where, position, keep_bad)


_ITERATORS = {
    "json": _iter_json,
    "jsonl": _iter_jsonl,
    "csv": lambda s, p, o, schema, need, keep: _iter_table(s, p, o, ",", need, keep),
    "tsv": lambda s, p, o, schema, need, keep: _iter_table(s, p, o, "\t", need, keep),
    "txt": _iter_txt,
}


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

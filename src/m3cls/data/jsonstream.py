"""Read the elements of a JSON array one at a time, so a large ``.json`` file is parsed in bounded memory.

:func:`iter_array` holds one element and one read chunk at a time. It uses the standard library's
``json.JSONDecoder.raw_decode``, so it needs no extra dependency and decodes exactly as ``json.loads`` does. A
syntax error names the line and column in the whole file, as ``json.loads`` would.

Example::

    >>> import io
    >>> list(iter_array(io.StringIO('[{"a": 1},\\n {"a": 2}]')))
    [{'a': 1}, {'a': 2}]
"""

from __future__ import annotations

import json
import re
from typing import IO, Iterator

#: characters read from the stream at a time; an element longer than this grows the buffer by doubling
CHUNK = 1 << 16
_BLANK = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
#: how close to the end of the buffer a decoding error must be to mean "cut off by the chunk" (literals and
#: numbers are shorter than this; an unterminated string is reported where it starts, so it is checked apart)
_NEAR_END = 64
_KINDS = {"{": "object", '"': "string", "t": "boolean", "f": "boolean", "n": "null"}


class JsonSyntaxError(ValueError):
    """The text is not valid JSON; ``lineno`` and ``colno`` are 1-based positions in the whole stream."""

    def __init__(self, msg: str, lineno: int, colno: int):
        super().__init__(f"{msg}: line {lineno} column {colno}")
        self.msg, self.lineno, self.colno = msg, lineno, colno


class NotAnArray(ValueError):
    """The top-level value is valid JSON's start but not a list; ``kind`` says what it is ("object", ...)."""

    def __init__(self, kind: str):
        super().__init__(f"the top level is a JSON {kind}, not a list")
        self.kind = kind


class _Reader:
    """A window on a text stream: the unconsumed part of what was read, and where it starts in the file."""

    def __init__(self, stream: IO[str], chunk: int = CHUNK):
        self._stream, self._chunk = stream, chunk
        self._buf, self._pos, self._eof = "", 0, False
        self._line, self._col = 1, 0  # the file position of _buf[0]: line (1-based), column (0-based)

    def _fill(self, at_least: int = 0) -> bool:
        """Append the next chunk, dropping what was consumed; False (and nothing changed) at the end."""
        chunk = "" if self._eof else self._stream.read(max(self._chunk, at_least))
        if not chunk:
            self._eof = True
            return False
        done = self._buf[: self._pos]
        newlines = done.count("\n")
        if newlines:
            self._line += newlines
            self._col = len(done) - done.rfind("\n") - 1
        else:
            self._col += len(done)
        self._buf, self._pos = self._buf[self._pos:] + chunk, 0
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), without consuming it."""
        while True:
            self._pos = _BLANK.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def take(self) -> None:
        self._pos += 1

    def value(self) -> object:
        """Decode the next JSON value, reading more of the stream while it may be cut off by the chunk."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as e:
                cut = e.pos >= len(self._buf) - _NEAR_END or e.msg.startswith("Unterminated string")
                if cut and self._fill(len(self._buf) - self._pos):
                    continue
                raise self.error(e.msg, e.pos) from None
            if end < len(self._buf) - _NEAR_END or not self._fill(len(self._buf) - self._pos):  # a number may go on
                self._pos = end
                return value

    def error(self, msg: str, pos: int | None = None) -> JsonSyntaxError:
        pos = self._pos if pos is None else pos
        line = self._line + self._buf.count("\n", 0, pos)
        last = self._buf.rfind("\n", 0, pos)
        return JsonSyntaxError(msg, line, pos - last if last >= 0 else self._col + pos + 1)


def iter_array(stream: IO[str], chunk: int = CHUNK) -> Iterator[object]:
    """Yield the elements of the JSON array in ``stream`` one by one.

    Raises :class:`NotAnArray` when the document is an object (or another value) and :class:`JsonSyntaxError`
    when it is not valid JSON; elements before a syntax error have been yielded by then.
    """
    reader = _Reader(stream, chunk)
    first = reader.peek()
    if first != "[":
        kind = "number" if first and first in "-0123456789" else _KINDS.get(first)
        if kind is None:
            raise reader.error("Expecting value")
        raise NotAnArray(kind)
    reader.take()
    if reader.peek() == "]":
        reader.take()
    else:
        while True:
            yield reader.value()
            after = reader.peek()
            if after not in (",", "]") or not after:
                raise reader.error("Expecting ',' delimiter")
            reader.take()
            if after == "]":
                break
    if reader.peek():
        raise reader.error("Extra data")

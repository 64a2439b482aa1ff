"""``--on_error stop|skip`` and ``--max_errors N``: what a bad input record does to ``predict`` and ``evaluate``.

``stop`` (the default) ends the command at the first bad record with its one-line error and exit code 2.
``skip`` marks the record (``predict`` writes ``{"index": i, "error": "..."}`` in its place) and goes on; the
command ends with one summary line on stderr. ``--max_errors N`` turns a flood into a stop: the run ends once
more than N records were bad.
"""

from __future__ import annotations

import argparse
from typing import Iterable, Iterator

from ..data.readers import Item
from ..errors import ConfigError, DataError

ON_ERROR = ("stop", "skip")
#: bad records quoted in the summary line
REASONS_SHOWN = 3


def add_error_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on_error", choices=ON_ERROR, default="stop",
                   help="a bad record (empty text, missing field, a JSONL line that is not JSON, a CSV row with "
                        "the wrong number of fields, a blank line): stop (default; exit 2) or skip (mark it and go "
                        "on, then print a summary)")
    p.add_argument("--max_errors", type=int, default=None,
                   help="with --on_error skip: stop (exit 2) once more than this many records were bad")


class BadRecords:
    """Applies ``--on_error``/``--max_errors`` to a stream of items and counts what it saw for the summary."""

    def __init__(self, on_error: str = "stop", max_errors: int | None = None, source: str = "input"):
        if on_error not in ON_ERROR:
            raise ConfigError(f"--on_error {on_error!r} is not one of: {', '.join(ON_ERROR)}")
        if max_errors is not None and max_errors < 0:
            raise ConfigError(f"--max_errors {max_errors} must be 0 or more")
        if max_errors is not None and on_error != "skip":
            raise ConfigError("--max_errors needs --on_error skip (with stop, the first bad record ends the run)")
        self.on_error, self.max_errors, self.source = on_error, max_errors, source
        self.read = 0
        self.bad = 0
        self.reasons: list[str] = []

    @classmethod
    def from_args(cls, a: argparse.Namespace, source: str) -> "BadRecords":
        return cls(a.on_error, a.max_errors, "stdin" if source == "-" else source)

    @property
    def skipping(self) -> bool:
        return self.on_error == "skip"

    def check(self, items: Iterable[Item]) -> Iterator[Item]:
        """Pass items on; a bad one raises ``DataError`` under stop (or past --max_errors), else is counted."""
        for item in items:
            self.read += 1
            if item.error is not None:
                self.bad += 1
                if not self.skipping:
                    raise DataError(f"{item.error} (--on_error skip marks bad records and goes on)")
                if len(self.reasons) < REASONS_SHOWN:
                    self.reasons.append(item.error)
                if self.max_errors is not None and self.bad > self.max_errors:
                    raise DataError(f"{self.bad} bad records, more than --max_errors {self.max_errors}; the last: "
                                    f"{item.error}")
            yield item

    def summary(self, done: str = "predicted") -> str:
        """One line: records read, done, skipped, and the first few reasons."""
        prefix = f"{self.source}: "
        reasons = " | ".join(r[len(prefix):] if r.startswith(prefix) else r for r in self.reasons)
        return (f"{self.source}: read {self.read} records: {self.read - self.bad} {done}, {self.bad} skipped"
                + (f" (first reasons: {reasons})" if reasons else ""))

"""What ``predict --input`` does to its rows on the way out: CSV files, the terminal view, a progress bar.

- ``--output x.csv`` writes one row per record; a mapping (``probabilities``) becomes one column per key
  (``probabilities.GPT``), and a list (``labels``, ``segments``, ``attributions``) one JSON-encoded column.
- On a terminal, stdout shows probabilities rounded to 4 digits (``TERMINAL_DIGITS``); files get full precision.
- On a terminal, stderr shows a progress bar, with an ETA when the input is a file of one record per line.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Iterable, Iterator

from ..errors import OutputError
from ..files import atomic_open

TERMINAL_DIGITS = 4
#: formats whose records are lines, so counting lines gives the total for the ETA
LINE_FORMATS = (".txt", ".jsonl", ".csv", ".tsv")


def is_csv(path: str) -> bool:
    return path != "-" and path.lower().endswith(".csv")


def flatten(row: dict) -> dict:
    """One CSV row: mappings spread into ``key.sub`` columns, lists as JSON text."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        elif isinstance(value, (list, tuple)):
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out


def write_csv(path: str, rows: Iterable[dict]) -> int:
    """Write rows as CSV; the columns are the first good row's (and ``error``); bad rows before it wait for it.

    A file appears under its name only when complete.
    """
    count, waiting, writer = 0, [], None
    with atomic_open(path) as f:
        for count, row in enumerate(rows, 1):
            flat = flatten(row)
            if writer is None and "error" in flat and len(flat) == 2:
                waiting.append(flat)   # a bad record's row names no columns of the good ones
                continue
            if writer is None:
                writer = csv.DictWriter(f, [*flat, *(["error"] if "error" not in flat else [])], restval="")
                writer.writeheader()
                writer.writerows(waiting)
            unknown = set(flat) - set(writer.fieldnames)
            if unknown:
                raise OutputError(f"{path}: record {flat.get('index')} has the fields {sorted(unknown)} that the "
                                  f"first record lacks; write JSONL (--output x.jsonl) for such output")
            writer.writerow(flat)
        if writer is None:   # every record was bad
            writer = csv.DictWriter(f, ["index", "error"])
            writer.writeheader()
            writer.writerows(waiting)
    return count


def rounded(rows: Iterable[dict], digits: int = TERMINAL_DIGITS) -> Iterator[dict]:
    """Rows with their probabilities rounded for a person reading a terminal."""
    for row in rows:
        if isinstance(row.get("probabilities"), dict):
            row = dict(row, probabilities={k: round(v, digits) for k, v in row["probabilities"].items()})
        yield row


def count_records(path: str) -> int | None:
    """Records in a file of one record per line (a CSV/TSV header not counted), else None (no ETA then)."""
    if path == "-" or not path.lower().endswith(LINE_FORMATS):
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - path.lower().endswith((".csv", ".tsv")), 0)


def with_progress(rows: Iterable[dict], total: int | None) -> Iterator[dict]:
    """Rows as they come, with a progress bar (and ETA when ``total`` is known) on stderr."""
    from tqdm import tqdm

    from .common import bar_safe_logging

    with bar_safe_logging(), tqdm(total=total, desc="predict", unit="text", file=sys.stderr,
                                  dynamic_ncols=True) as bar:
        for row in rows:
            yield row
            bar.update(1)

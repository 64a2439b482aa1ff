"""File helpers shared by every writer: atomic files, staged folders, and optional-extra imports.

An output appears under its final name only when complete: a reader (or a crash) never sees half of it.

Example::

    >>> import os, tempfile
    >>> from m3cls.files import atomic_open
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_open(path) as f:
    ...     _ = f.write("done")
    >>> open(path).read()
    'done'
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
from typing import IO, Iterator

from .errors import ConfigError, OutputError

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def atomic_open(path: str, what: str = "--output") -> Iterator[IO[str]]:
    """Write ``path`` through ``path.partial``; renamed into place only when the block ends without error."""
    with atomic_path(path, what) as partial, open(partial, "w", encoding="utf-8") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str, what: str = "--output") -> Iterator[str]:
    """The ``path.partial`` name for a writer that opens files itself (Parquet); renamed into place on success."""
    partial = path + PARTIAL_SUFFIX
    try:
        yield partial
        os.replace(partial, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); choose another {what}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def write_json(path: str, obj: object, what: str = "--output") -> str:
    """Write a JSON document atomically (indented, UTF-8 kept readable)."""
    with atomic_open(path, what) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


@contextlib.contextmanager
def staged_folder(target: str) -> Iterator[str]:
    """A fresh sibling folder ``target.partial`` to fill; on success it replaces ``target`` whole."""
    staging = target.rstrip("/") + PARTIAL_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.replace(staging, target)


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or fail with the exact install line for the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f'{purpose} needs {module.split(".")[0]}; run: pip install "m3cls[{extra}]"') from None

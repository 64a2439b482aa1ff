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
import logging
import os
import shutil
import tempfile
from typing import IO, Callable, Iterator

from .errors import ConfigError, OutputError

PARTIAL_SUFFIX = ".partial"
logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_open(path: str, what: str = "--output") -> Iterator[IO[str]]:
    """Write ``path`` through a unique partial file beside it; moved into place only when the block ends
    without error (see :func:`atomic_path`)."""
    with atomic_path(path, what) as partial, open(partial, "w", encoding="utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str, what: str = "--output") -> Iterator[str]:
    """A unique partial name beside ``path`` for a writer that opens files itself (Parquet); on success it is
    fsynced and replaces ``path``. The name is unique (``mkstemp``), so two runs writing one output never
    write into one partial file: the last to finish leaves its whole file."""
    folder, base = os.path.split(os.path.abspath(path))
    try:
        fd, partial = tempfile.mkstemp(prefix=f"{base}.", suffix=PARTIAL_SUFFIX, dir=folder)
        os.close(fd)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); choose another {what}") from None
    try:
        yield partial
        _fsync(partial)
        os.replace(partial, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); choose another {what}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _fsync(path: str) -> None:
    """Flush a file's bytes to disk before it is renamed into place (a crash then leaves old or new, whole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: str, obj: object, what: str = "--output") -> str:
    """Write a JSON document atomically (indented, UTF-8 kept readable)."""
    with atomic_open(path, what) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


def unique_sibling(target: str, suffix: str) -> str:
    """A new, empty folder beside ``target`` under a name no other run uses (``NAME.XXXX<suffix>``)."""
    parent, base = os.path.split(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{base}.", suffix=suffix, dir=parent)


@contextlib.contextmanager
def staged_folder(target: str) -> Iterator[str]:
    """A fresh, uniquely named sibling folder to fill; on success it replaces ``target`` whole.

    The replacement never deletes before the new folder is in place: the old folder is moved aside (under a
    unique ``NAME.XXXX.old`` name), the new one moved in, and only then is the old one deleted. A crash at any
    point leaves one complete copy (under ``target``, or beside it with ``.old``), and no later run deletes it.
    """
    staging = unique_sibling(target, PARTIAL_SUFFIX)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, target)


def replace_folder(new: str, target: str) -> None:
    """Move the folder ``new`` to ``target``: the old ``target`` is moved aside first and deleted last."""
    aside = None
    if os.path.lexists(target):
        aside = unique_sibling(target, ".old")
        os.rmdir(aside)  # the unique name is kept free for the move
        os.replace(target, aside)
    try:
        os.replace(new, target)
    except OSError:
        if aside is not None and not os.path.lexists(target):
            os.replace(aside, target)  # put the old folder back
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def is_within(inner: str, outer: str) -> bool:
    """True when folder ``inner`` is ``outer`` or lies anywhere below it (links resolved)."""
    inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    return os.path.commonpath([inner, outer]) == outer


def check_replaceable(path: str, flag: str, kind: str, holds_kind: Callable[[str], bool],
                      protected: dict[str, str | None] | None = None) -> None:
    """Refuse to replace a folder m3cls did not write, before any work: the current folder or one above it,
    a ``protected`` folder (``{"--model_path": path}``) or one above it, or a non-empty folder that holds no
    ``kind`` (``holds_kind(folder)`` is False). Raises OutputError naming the path and the fix."""
    fix = f"choose a new folder for {flag}"
    if is_within(os.getcwd(), path):
        raise OutputError(f"{path}: {flag} is the current folder or a folder above it, and replacing it would "
                          f"delete files m3cls did not write; {fix}")
    for name, other in (protected or {}).items():
        if other and os.path.exists(other) and is_within(other, path):
            raise OutputError(f"{path}: {flag} is {name} ({other}) or a folder above it, and replacing it "
                              f"would delete that model; {fix}")
    if os.path.isdir(path) and os.listdir(path) and not holds_kind(path):
        raise OutputError(f"{path}: {flag} is not empty and holds no {kind}, so m3cls will not replace it; "
                          f"{fix}, or empty this one")


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or fail with the exact install line for the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f'{purpose} needs {module.split(".")[0]}; run: pip install "m3cls[{extra}]"') from None

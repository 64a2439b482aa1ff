"""An on-disk cache of text embeddings, so a second run (another head, fold or setting) does not recompute them.

Layout: ``CACHE_DIR/embeddings/KEY/`` per settings, where KEY is a hash of everything that changes a vector
(the model's fingerprint, max_length, truncation, long-text windows, pooling, normalisation, precision and
device). ``settings.json`` in that folder spells the settings out, and is compared on every open: a cache made
with other settings is never used. Vectors sit in shard files, each written atomically as soon as its texts are
embedded, so an interrupted run keeps what it finished. Each shard carries its settings key and a SHA-256 of
its contents; a corrupt or truncated shard is reported in one log line, deleted, and its texts embedded again.

Small JSON results that depend on the same things and on the data (the data inspection training logs first)
are kept beside them, one file per hash of their inputs: :func:`cached_result`.

This module is numpy only. Example::

    >>> import tempfile, numpy as np
    >>> cache = EmbeddingCache(tempfile.mkdtemp(), {"model": "m", "max_length": 8})
    >>> cache.put(["a text"], np.ones((1, 3), dtype=np.float32))
    >>> cache.get(["a text", "another"])[1]
    [1]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid

import numpy as np

from ..errors import OutputError

logger = logging.getLogger(__name__)

MAGIC = b"M3CLSEMB"
FORMAT = 1
SETTINGS_FILE = "settings.json"


def default_cache_dir() -> str:
    """``$M3CLS_CACHE``, else ``$XDG_CACHE_HOME/m3cls``, else ``~/.cache/m3cls``."""
    if os.environ.get("M3CLS_CACHE"):
        return os.environ["M3CLS_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "m3cls")


def text_key(text: str) -> bytes:
    """16 bytes of SHA-256 of the exact text: the cache's per-text key."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def settings_key(settings: dict) -> str:
    """A hash of the settings (canonical JSON), naming the cache folder."""
    canonical = json.dumps({"format": FORMAT, **settings}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


class EmbeddingCache:
    """Embeddings of texts under one settings key, read from and written to shard files."""

    def __init__(self, root: str, settings: dict):
        self.settings = {"format": FORMAT, **settings}
        self.key = settings_key(settings)
        self.folder = os.path.join(root, "embeddings", self.key)
        self._rows: dict[bytes, np.ndarray] = {}
        self._index: dict[bytes, str] = {}   # key -> shard holding it, vectors not read yet
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._check_settings()
        except OSError as e:
            raise OutputError(f"{self.folder}: cannot use the embedding cache ({e.strerror or e}); choose "
                              f"another --cache_dir") from None
        self._load()

    def _check_settings(self) -> None:
        path = os.path.join(self.folder, SETTINGS_FILE)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    saved = json.load(f)
            except (OSError, ValueError):
                saved = None
            if saved == self.settings:
                return
            logger.warning("embedding cache %s was made with other settings; emptying it", self.folder)
            for name in os.listdir(self.folder):
                os.remove(os.path.join(self.folder, name))
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(self.settings, f, indent=2, sort_keys=True, ensure_ascii=False)
        os.replace(partial, path)

    def _load(self) -> None:
        """Index the shards by their keys (headers and keys only: the vectors are read when asked for)."""
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(".emb"):
                continue
            path = os.path.join(self.folder, name)
            try:
                keys = read_shard_keys(path, self.key)
            except ValueError as e:
                self._drop(path, e)
                continue
            self._index.update(dict.fromkeys(keys, path))

    def _drop(self, path: str, error: ValueError) -> None:
        logger.warning("embedding cache: %s is damaged (%s); deleting it, its texts will be embedded again",
                       path, error)
        with contextlib.suppress(OSError):
            os.remove(path)
        self._index = {k: p for k, p in self._index.items() if p != path}

    def _read_needed(self, keys: list[bytes]) -> None:
        """Read the vectors of the shards that hold some of ``keys`` (and only those shards)."""
        for path in sorted({self._index[k] for k in keys if k not in self._rows and k in self._index}):
            try:
                shard_keys, vectors = read_shard(path, self.key)
            except (OSError, ValueError) as e:
                self._drop(path, ValueError(str(e)))
                continue
            self._rows.update(zip(shard_keys, vectors))

    def __len__(self) -> int:
        return len(self._index.keys() | self._rows.keys())

    def get(self, texts: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """(position -> vector for cached texts, positions of texts not cached)."""
        keys = [text_key(text) for text in texts]
        self._read_needed(keys)
        found, missing = {}, []
        for position, key in enumerate(keys):
            row = self._rows.get(key)
            if row is None:
                missing.append(position)
            else:
                found[position] = row
        return found, missing

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        """Write one shard for these texts, atomically; they are cached from now on. A shard that cannot be
        written (a full disk) is a warning: the vectors are kept for this run, only the next run recomputes."""
        keys = [text_key(t) for t in texts]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        path = os.path.join(self.folder, f"{uuid.uuid4().hex}.emb")
        self._rows.update(zip(keys, vectors))
        try:
            write_shard(path, self.key, keys, vectors)
        except OSError as e:
            logger.warning("embedding cache: cannot write %s (%s); going on without caching these %d texts (free "
                           "some space or choose another --cache_dir)", path, e.strerror or e, len(keys))
            return
        self._index.update(dict.fromkeys(keys, path))


def write_shard(path: str, key: str, keys: list[bytes], vectors: np.ndarray) -> None:
    """MAGIC, a header length, a JSON header (settings key, count, width, SHA-256), then keys and vectors."""
    payload = b"".join(keys) + vectors.tobytes()
    header = json.dumps({"key": key, "count": len(keys), "dim": int(vectors.shape[1]),
                         "sha256": hashlib.sha256(payload).hexdigest()}).encode("utf-8")
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(partial, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header + payload)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _header(f, key: str) -> tuple[int, int, str, int]:
    """(count, dim, sha256, payload start) of an open shard; ValueError when it is not this key's shard."""
    head = f.read(len(MAGIC) + 8)
    if head[: len(MAGIC)] != MAGIC or len(head) < len(MAGIC) + 8:
        raise ValueError("not an m3cls embedding shard")
    size = int.from_bytes(head[len(MAGIC):], "little")
    try:
        header = json.loads(f.read(size).decode("utf-8"))
        count, dim, digest = int(header["count"]), int(header["dim"]), header["sha256"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("unreadable header") from None
    if header.get("key") != key:
        raise ValueError("made with other settings")
    return count, dim, digest, len(MAGIC) + 8 + size


def read_shard_keys(path: str, key: str) -> list[bytes]:
    """A shard's keys only (its header and 16 bytes a text): what opening the cache reads of each shard."""
    with open(path, "rb") as f:
        count, dim, _, start = _header(f, key)
        if os.fstat(f.fileno()).st_size - start != count * (16 + 4 * dim):
            raise ValueError(f"truncated: {os.fstat(f.fileno()).st_size - start} bytes of {count * (16 + 4 * dim)}")
        blob = f.read(count * 16)
    return [blob[i * 16: (i + 1) * 16] for i in range(count)]


def read_shard(path: str, key: str) -> tuple[list[bytes], np.ndarray]:
    """A shard's keys and vectors; ValueError (saying what is wrong) when it is damaged or not this key's."""
    with open(path, "rb") as f:
        count, dim, digest, _ = _header(f, key)
        payload = f.read()
    if len(payload) != count * (16 + 4 * dim):
        raise ValueError(f"truncated: {len(payload)} bytes of {count * (16 + 4 * dim)}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ValueError("checksum mismatch")
    keys = [payload[i * 16: (i + 1) * 16] for i in range(count)]
    vectors = np.frombuffer(payload[count * 16:], dtype=np.float32).reshape(count, dim)
    return keys, vectors


def data_digest(*columns: list | None) -> str:
    """SHA-256 of lists of texts, labels or groups, value by value (JSON, length-prefixed, so no two different
    lists give the same bytes): a key part that changes with any record."""
    digest = hashlib.sha256()
    for column in columns:
        digest.update(b"N" if column is None else b"L%d:" % len(column))
        for value in column or ():
            data = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
            digest.update(b"%d:" % len(data) + data)
    return digest.hexdigest()


def cached_result(root: str | None, kind: str, inputs, compute) -> tuple[dict, bool]:
    """``(compute(), False)``, kept in ``root/kind/KEY.json`` (KEY a hash of ``inputs``, a dict or a function
    returning one); ``(the kept result, True)`` when a file with the same inputs is there. No ``root``: always
    computed, nothing kept, and ``inputs`` (which may cost a pass over the data) never called.

    The file spells its inputs out and they are compared on reading, as the embeddings' settings are; a damaged
    file is reported in one log line and computed again. A file that cannot be written costs only the next run
    the time.
    """
    if not root:
        return compute(), False
    inputs = inputs() if callable(inputs) else inputs
    path = os.path.join(root, kind, f"{settings_key(inputs)}.json")
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.get("inputs") == json.loads(json.dumps(inputs)) and isinstance(saved.get("result"), dict):
                return saved["result"], True
            logger.warning("%s cache: %s does not match its inputs; computing it again", kind, path)
        except (OSError, ValueError, AttributeError) as e:
            logger.warning("%s cache: %s is damaged (%s); computing it again", kind, path, e)
    result = compute()
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(partial, "w", encoding="utf-8") as f:
            json.dump({"inputs": inputs, "result": result}, f, ensure_ascii=False)
        os.replace(partial, path)
    except (OSError, TypeError, ValueError) as e:
        logger.warning("%s cache: cannot write %s (%s); the next run computes it again", kind, path,
                       getattr(e, "strerror", None) or e)
        if os.path.exists(partial):
            os.remove(partial)
    return result, False

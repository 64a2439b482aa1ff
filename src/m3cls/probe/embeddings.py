"""Text embeddings from a frozen encoder, computed once and cached: the input of the probe, cv and the audit.

Texts become model inputs through the contract's :class:`~m3cls.model.tokens.TextEncoder` (truncation, or windows
averaged per text for ``long_text="chunks"``), are embedded in batches sorted by length under the precision
``modeling.choose_precision`` picks (bf16 autocast on CPUs that pay for it), with a progress bar on stderr, and
pooled as the encoder's own pooling says (:mod:`m3cls.model.heads`). Each finished block of texts is written to the
:class:`~m3cls.probe.cache.EmbeddingCache` at once. The encoder is loaded only when some text is not cached.

Example::

    >>> emb = Embedder("bundled", max_length=128)                         # doctest: +SKIP
    >>> emb.embed(["Shares rose 5%.", "The striker scored."]).shape       # doctest: +SKIP
    (2, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from ..model.contract import LONG_TEXT_MODES, ModelContract

logger = logging.getLogger(__name__)

#: texts per cache shard: what an interrupted run can lose at most
BLOCK_TEXTS = 512
#: torch (bf16/fp16 where it pays), or onnx: a fused dynamic-int8 graph of the encoder run on the CPU, each text
#: alone (int8 quantizes activations over the whole input, so in a batch a vector would depend on its neighbours)
EMBED_BACKENDS = ("torch", "onnx")
_SMALL_FILE = 64 * 2**20


def model_fingerprint(path: str) -> dict:
    """What identifies a model's weights: its path, the content of its small files, the size and time of the
    large ones (hashing gigabytes of weights on every run would cost more than it guards)."""
    folder = path if os.path.isdir(path) else _hub_snapshot(path)
    if folder is None:
        return {"name": path}
    files = {}
    for name in sorted(os.listdir(folder)):
        full = os.path.join(folder, name)
        if not os.path.isfile(full):
            continue
        stat = os.stat(full)
        if stat.st_size <= _SMALL_FILE and not name.endswith((".safetensors", ".bin", ".onnx")):
            with open(full, "rb") as f:
                files[name] = hashlib.sha256(f.read()).hexdigest()[:16]
        else:
            files[name] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return {"path": os.path.abspath(folder), "files": files}


def _hub_snapshot(name: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # a malformed name
        return None
    return os.path.dirname(found) if isinstance(found, str) else None


class Embedder:
    """Embeds texts with a frozen encoder as a contract says, through the on-disk cache."""

    def __init__(self, model_name: str, *, max_length: int = 512, truncation: str = "head",
                 long_text: str = "truncate", stride: int = 0, pooling: str = "auto", device: str = "auto",
                 precision: str = "auto", batch_size: int = 32, cache_dir: str | None = None,
                 backend: str = "torch", trust_remote_code: bool = False, allow_pickle: bool = False):
        from ..model.folder import ModelFolder
        from ..model.heads import detect_pooling
        from ..model.loading import choose_device, choose_precision, load_tokenizer

        if long_text not in LONG_TEXT_MODES:
            raise ConfigError(f"--long_text {long_text!r} is not one of: {', '.join(LONG_TEXT_MODES)}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if backend not in EMBED_BACKENDS:
            raise ConfigError(f"--embed_backend {backend!r} is not one of: {', '.join(EMBED_BACKENDS)}")
        self.folder = ModelFolder.read(model_name)  # read once: the tokenizer and every encoder load take it
        self.model_name, self.path = model_name, self.folder.path
        self.tokenizer = load_tokenizer(self.folder, trust_remote_code)
        self.pooling, self.normalize, source = detect_pooling(self.path, pooling)
        logger.info("pooling: %s%s (from %s)", self.pooling, " + L2 normalisation" if self.normalize else "",
                    source)
        self.backend_kind, self.cache_dir = backend, cache_dir
        self.device = choose_device(device) if backend == "torch" else choose_device("cpu")
        self.precision = choose_precision(precision, self.device) if backend == "torch" else "int8"
        self.contract_settings = dict(max_length=max_length, truncation=truncation, long_text=long_text,
                                      stride=stride if long_text == "chunks" else 0)
        from ..model.tokens import TextEncoder

        self.encoder = TextEncoder(self.tokenizer, max_length, truncation, self.contract_settings["stride"])
        if long_text == "chunks":
            self.encoder.check_windows()
        self.batch_size, self.trust_remote_code, self.allow_pickle = batch_size, trust_remote_code, allow_pickle
        self._backend = None
        self.cache = None
        if cache_dir:
            from .cache import EmbeddingCache

            self.cache = EmbeddingCache(cache_dir, self.settings())
        self.stats = {"texts": 0, "cached": 0, "computed": 0, "seconds": 0.0}

    def settings(self) -> dict:
        """Everything that changes a vector: the cache key."""
        return {"model": model_fingerprint(self.path), **self.contract_settings, "pooling": self.pooling,
                "normalize": self.normalize, "precision": self.precision, "device": self.device.type}

    def contract(self, labels: tuple[str, ...]) -> ModelContract:
        """The contract of a probe model built on these embeddings."""
        return ModelContract(labels=labels, head="probe", pooling=self.pooling, normalize=self.normalize,
                             **self.contract_settings)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 vector per text, in input order; cached texts are read, the rest computed and cached."""
        start = time.perf_counter()
        unique = list(dict.fromkeys(texts))
        found, missing = self.cache.get(unique) if self.cache else ({}, list(range(len(unique))))
        vectors = dict(found)
        if missing:
            todo = [unique[i] for i in missing]
            for position, vector in zip(missing, self._compute(todo)):
                vectors[position] = vector
        row_of = {text: i for i, text in enumerate(unique)}
        out = np.stack([vectors[row_of[t]] for t in texts]) if texts else np.empty((0, 0), np.float32)
        seconds = time.perf_counter() - start
        self.stats = {"texts": len(texts), "cached": len(found), "computed": len(missing),
                      "seconds": self.stats["seconds"] + seconds}
        logger.info("embeddings: %d texts (%d distinct): %d from the cache, %d computed, %.1f s", len(texts),
                    len(unique), len(found), len(missing), seconds)
        return out

    def _compute(self, texts: list[str]) -> np.ndarray:
        """Embed texts block by block (longest first), writing each block to the cache when it is done."""
        from tqdm import tqdm

        if self.contract_settings["long_text"] == "chunks":
            inputs = self.encoder.windows(texts)
        else:
            inputs = [[ids] for ids in self.encoder.encode(texts)]
        order = sorted(range(len(texts)), key=lambda i: -max(len(w) for w in inputs[i]))
        result: list[np.ndarray | None] = [None] * len(texts)
        backend = self._load_backend()
        bar = tqdm(total=len(texts), desc="embedding", unit="text", file=sys.stderr,
                   disable=not sys.stderr.isatty())
        started = time.perf_counter()
        for block_start in range(0, len(order), BLOCK_TEXTS):
            chosen = order[block_start: block_start + BLOCK_TEXTS]
            flat = [w for i in chosen for w in inputs[i]]
            windows = self._run(backend, flat)
            bounds = np.cumsum([0] + [len(inputs[i]) for i in chosen])
            block = np.stack([windows[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
            if self.cache is not None:
                self.cache.put([texts[i] for i in chosen], block)
            for i, vector in zip(chosen, block):
                result[i] = vector
            bar.update(len(chosen))
            done = block_start + len(chosen)
            if bar.disable:
                logger.info("embedded %d/%d texts (%.1f texts/s)", done, len(texts),
                            done / max(1e-9, time.perf_counter() - started))
        bar.close()
        return np.stack(result).astype(np.float32)

    def _run(self, backend, ids: list[list[int]]) -> np.ndarray:
        """Vectors for token id lists, in batches padded to their own longest list (ids come longest first)."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows = []
        for start in range(0, len(ids), self.batch_size):
            batch = ids[start: start + self.batch_size]
            longest = max(len(x) for x in batch)
            input_ids = np.full((len(batch), longest), pad, dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for row, x in enumerate(batch):
                input_ids[row, : len(x)] = x
                mask[row, : len(x)] = 1
            rows.append(backend(input_ids, mask))
        return np.concatenate(rows).astype(np.float32)

    def _load_backend(self):
        """The encoder with pooling behind the torch backend (precision and device handling), loaded once."""
        if self._backend is None and self.backend_kind == "onnx":
            from ..model.backends import OnnxBackend

            self._backend = OnnxBackend(self._onnx_graph(), per_text=True)
        if self._backend is None:
            from ..model.backends import TorchBackend
            from ..model.loading import load_encoder

            encoder = load_encoder(self.folder, trust_remote_code=self.trust_remote_code,
                                   allow_pickle=self.allow_pickle)
            self._backend = TorchBackend(_Pooled(encoder, self.pooling, self.normalize), self.device,
                                         self.precision, weights="bf16", first_token=False)
        return self._backend

    def _onnx_graph(self) -> str:
        """The encoder+pooling int8 graph, exported once per model and pooling into the cache folder."""
        import tempfile

        from ..export.onnx import export_pooled_encoder
        from ..model.loading import load_encoder
        from .cache import settings_key

        key = settings_key({"model": model_fingerprint(self.path), "pooling": self.pooling,
                            "normalize": self.normalize})
        folder = os.path.join(self.cache_dir or tempfile.mkdtemp(prefix="m3cls-onnx-"), "onnx", key)
        path = os.path.join(folder, "model.int8.onnx")
        if os.path.isfile(path):
            return path
        logger.info("exporting the encoder to an int8 ONNX graph in %s (once per model)", folder)
        encoder = load_encoder(self.folder, {"_attn_implementation": "eager"}, self.trust_remote_code,
                               self.allow_pickle).eval()
        return export_pooled_encoder(_Pooled(encoder, self.pooling, self.normalize), self.tokenizer, folder)

    def load_encoder(self):
        """The encoder in its own precision on the CPU (to save it beside a probe head)."""
        if self.backend_kind == "torch" and self._backend is not None \
                and not self._backend.weights_cast:
            # the weights are as loaded (bf16 inference casts them; then it reloads)
            return self._backend.model.encoder
        from ..model.loading import load_encoder

        return load_encoder(self.folder, trust_remote_code=self.trust_remote_code,
                            allow_pickle=self.allow_pickle)


def _Pooled(encoder, pooling: str, normalize: bool):
    """The encoder returning pooled vectors as ``.logits``, so :class:`~m3cls.model.backends.TorchBackend` runs it."""
    import torch

    from ..model.heads import pool

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids=None, attention_mask=None):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return SimpleNamespace(logits=pool(hidden, attention_mask, pooling, normalize))

    module = Pooled()
    module.config = encoder.config
    return module

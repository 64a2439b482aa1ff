"""Classifier: load a fine-tuned model once and predict many texts fast.

Texts are tokenized once without padding, sorted by length so each batch pads only to its own longest
text, run under bf16/fp16 where the hardware pays for it, and returned in input order. ``predict_stream``
works block by block, so a file of millions of lines runs in bounded memory.

Example::

    >>> from m3cls import Classifier
    >>> clf = Classifier.from_pretrained("runs/bbc")                       # doctest: +SKIP
    >>> clf.predict(["Shares rose 5% after the results."])[0].label       # doctest: +SKIP
    'business'
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from .errors import ConfigError
from .labels import LabelSet
from .meta import read_meta
from .metrics import softmax
from .modeling import autocast_dtype, choose_device, choose_precision, load_model, load_tokenizer
from .tokens import SpecialLayout

logger = logging.getLogger(__name__)
LONG_TEXT_MODES = ("truncate", "chunks")


def check_temperature(value: float) -> float:
    """A temperature must be a finite number above 0."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"temperature must be a number above 0 (1.0 leaves probabilities as they are), "
                          f"got {value!r}")
    return float(value)


@dataclass
class Prediction:
    """One text's result: the top label, its id, and every label's probability (highest first)."""

    label: str
    label_id: int
    probabilities: dict[str, float]
    n_chunks: int | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self, index: int | None = None) -> dict:
        """The JSON line that ``m3cls predict --output`` writes."""
        out = {} if index is None else {"index": index}
        out.update(label=self.label, label_id=self.label_id, probabilities=self.probabilities)
        if self.n_chunks is not None:
            out["n_chunks"] = self.n_chunks
        out.update(self.extra)
        return out


class TorchBackend:
    """Runs a transformers model; bf16 autocast on CPUs that pay for it, half-precision weights on GPUs."""

    def __init__(self, model, device: torch.device, precision: str):
        self.device, self.precision = device, precision
        self.model = model.to(device).eval()
        if device.type == "cuda" and precision != "fp32":
            self.model = self.model.to(autocast_dtype(precision))

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        dtype = autocast_dtype(self.precision)
        cast = torch.autocast(self.device.type, dtype=dtype) if dtype and self.device.type == "cpu" \
            else contextlib.nullcontext()
        with torch.inference_mode(), cast:
            out = self.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                             attention_mask=torch.from_numpy(attention_mask).to(self.device))
        return out.logits.float().cpu().numpy()


class Classifier:
    """A sequence classifier with its tokenizer, label names, max_length and temperature.

    ``backend`` is anything that maps (input_ids, attention_mask) int64 arrays to logits: ``TorchBackend``, or
    ``m3cls.export.OnnxBackend`` for an exported folder.
    """

    def __init__(self, backend, tokenizer, labels: LabelSet, *, max_length: int, temperature: float = 1.0,
                 batch_size: int = 32, long_text: str = "truncate", stride: int = 0):
        if long_text not in LONG_TEXT_MODES:
            raise ConfigError(f"--long_text {long_text!r} is not one of: {', '.join(LONG_TEXT_MODES)}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {max_length}")
        self.backend = backend
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.temperature = check_temperature(temperature)
        self.batch_size = batch_size
        self.long_text = long_text
        self.stride = stride
        self._layout = SpecialLayout.of(tokenizer)
        if long_text == "chunks":
            self._layout.windows([0] * (max_length + 1), max_length, stride)  # checks stride now, not mid-file
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @classmethod
    def from_pretrained(cls, path: str, *, device: str = "auto", precision: str = "auto",
                        max_length: int | None = None, batch_size: int = 32, trust_remote_code: bool = False,
                        allow_pickle: bool = False, long_text: str = "truncate", stride: int = 0,
                        backend: str = "torch") -> "Classifier":
        """Load a model folder written by ``m3cls train`` (or a checkpoint, an HF classifier folder, or an
        ``m3cls export`` folder with ``backend="onnx"``)."""
        meta = read_meta(path)
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
        if backend == "onnx":
            from .export import load_onnx_backend

            runner, config = load_onnx_backend(path, meta)
        elif backend == "torch":
            model = load_model(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
            dev = choose_device(device)
            runner, config = TorchBackend(model, dev, choose_precision(precision, dev)), model.config
        else:
            raise ConfigError(f"--backend {backend!r} is not one of: torch, onnx")
        return cls(runner, tokenizer, LabelSet.from_config(config.id2label),
                   max_length=max_length or _default_max_length(meta, tokenizer, config),
                   temperature=meta.get("temperature", 1.0), batch_size=batch_size, long_text=long_text,
                   stride=stride)

    # -- tokens --------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to max_length, unpadded."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                              return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        longest = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return self.backend(input_ids, mask)

    def logits_from_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Logits for token id lists, batched longest-first and returned in the given order."""
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        result = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start: start + self.batch_size]
            result[chosen] = self._forward([ids[i] for i in chosen])
        return result

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, one row per text, in input order."""
        return self.logits_and_chunks(texts)[0]

    def logits_and_chunks(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Logits per text and the number of windows each used (1 unless ``long_text='chunks'``)."""
        if not texts:
            return np.empty((0, len(self.labels)), dtype=np.float32), []
        if self.long_text == "truncate":
            return self.logits_from_ids(self.encode(texts)), [1] * len(texts)
        full = self.tokenizer(list(texts), truncation=False, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]
        windows = [self._layout.windows(ids, self.max_length, self.stride) for ids in full]
        flat = self.logits_from_ids([w for group in windows for w in group])
        bounds = np.cumsum([0] + [len(group) for group in windows])
        averaged = np.stack([flat[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
        return averaged, [len(group) for group in windows]

    # -- predictions ---------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str], temperature: float | None = None) -> list[Prediction]:
        """Predict labels and probabilities; ``temperature`` None means the model's fitted one."""
        logits, n_chunks = self.logits_and_chunks(texts)
        return self.predictions_from_logits(logits, temperature, n_chunks if self.long_text == "chunks" else None)

    def predict_stream(self, texts: Iterable[str], temperature: float | None = None,
                       block_size: int = 2048) -> Iterator[Prediction]:
        """Predict an iterable of any length block by block, yielding results in input order."""
        iterator = iter(texts)
        while block := list(itertools.islice(iterator, block_size)):
            yield from self.predict(block, temperature)

    def predictions_from_logits(self, logits: np.ndarray, temperature: float | None = None,
                                n_chunks: Sequence[int] | None = None) -> list[Prediction]:
        """Predictions from logits computed elsewhere (micro-batching, ONNX); ``temperature`` None: the model's."""
        t = self.temperature if temperature is None else check_temperature(temperature)
        probs = softmax(logits, t)
        names = self.labels.names
        results = []
        for row, p in enumerate(probs):
            top = int(p.argmax())
            ranked = sorted(range(len(names)), key=lambda i: -p[i])
            results.append(Prediction(names[top], top, {names[i]: float(p[i]) for i in ranked},
                                      n_chunks[row] if n_chunks is not None else None))
        return results


def _default_max_length(meta: dict, tokenizer, config) -> int:
    """The max_length saved at training, else what the model can take, capped at 512 for speed."""
    if meta.get("max_length"):
        return int(meta["max_length"])
    limits = [512, getattr(tokenizer, "model_max_length", 512) or 512]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        limits.append(positions - 2 if config.model_type in ("xlm-roberta", "roberta") else positions)
    return int(min(limits))

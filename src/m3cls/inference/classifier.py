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

import copy
import itertools
import logging
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, ModelLoadError
from ..metrics.classification import softmax
from ..metrics.decisions import rule_for
from ..metrics.multilabel import DEFAULT_THRESHOLD, sigmoid
from ..model.contract import LONG_TEXT_MODES, ModelContract, derive_contract, read_contract
from ..model.tokens import TextEncoder
from ..tasks.labels import LabelSet
from .segments import aggregate, segment_rows

logger = logging.getLogger(__name__)


def check_temperature(value: float) -> float:
    """A temperature must be a finite number above 0."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"temperature must be a number above 0 (1.0 leaves probabilities as they are), "
                          f"got {value!r}")
    return float(value)


@dataclass
class Prediction:
    """One text's result: the top label, its id, and every label's probability (highest first).

    Multi-label: ``labels`` (every label at or over its threshold, most probable first) and ``probabilities``
    (each label's sigmoid), no single ``label``. Regression: ``value`` only, in the target's units.
    """

    label: str | None
    label_id: int | None
    probabilities: dict[str, float] | None
    n_chunks: int | None = None
    decision: str | None = None
    segments: list[dict] | None = None
    attributions: list[list] | None = None
    labels: list[str] | None = None
    value: float | None = None

    def to_dict(self, index: int | None = None) -> dict:
        """The JSON line that ``m3cls predict --output`` writes; fields a task does not have are left out."""
        out = {} if index is None else {"index": index}
        if self.label is not None:
            out.update(label=self.label, label_id=self.label_id)
        if self.labels is not None:
            out["labels"] = self.labels
        if self.value is not None:
            out["value"] = self.value
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
        for key in ("n_chunks", "decision", "segments", "attributions"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class Classifier:
    """A sequence classifier: a backend, a tokenizer, and the model contract that joins them.

    ``backend`` is anything that maps (input_ids, attention_mask) int64 arrays to logits
    (``m3cls.model.backends.TorchBackend`` or ``OnnxBackend``). Inputs come from the contract's
    :class:`~m3cls.model.tokens.TextEncoder`, the same function training used. ``max_length``, ``long_text`` and
    ``stride`` given here override the contract for this process only, as do ``aggregate`` (how windows make a
    document) and ``abstain_below`` over the contract's decision rule; ``segments`` adds each window's scores;
    ``threshold`` (multi-label) is one decision threshold for every label instead of the tuned ones.
    """

    def __init__(self, backend, tokenizer, contract: ModelContract, *, batch_size: int = 32,
                 max_length: int | None = None, long_text: str | None = None, stride: int | None = None,
                 aggregate: str | None = None, abstain_below: float | None = None, segments: bool = False,
                 threshold: float | None = None):
        long_text = long_text or contract.long_text
        if long_text not in LONG_TEXT_MODES:
            raise ConfigError(f"--long_text {long_text!r} is not one of: {', '.join(LONG_TEXT_MODES)}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if max_length is not None and max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {max_length}")
        self.backend = backend
        self.tokenizer = tokenizer
        self.contract = contract
        self.labels = LabelSet(contract.labels)
        self.encoder = TextEncoder.from_contract(tokenizer, contract, max_length, stride)
        self.temperature = check_temperature(contract.temperature)
        self.thresholds = label_thresholds(contract, threshold)
        self.batch_size = batch_size
        self.long_text = long_text
        if long_text == "chunks":
            self.encoder.check_windows()
        self.rule = rule_for(contract, long_text, aggregate, abstain_below, segments)
        self.segments = segments
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # a private copy for counting unknown tokens: a tokenizer called with other truncation settings from
        # two threads at once fails ("Already borrowed"), and a server counts while its worker encodes
        self._counting_tokenizer = copy.deepcopy(tokenizer)

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @classmethod
    def from_pretrained(cls, path: str, *, device: str = "auto", precision: str = "auto",
                        max_length: int | None = None, batch_size: int = 32, trust_remote_code: bool = False,
                        allow_pickle: bool = False, long_text: str | None = None, stride: int | None = None,
                        backend: str = "torch", onnx_file: str | None = None, threshold: float | None = None,
                        **options) -> "Classifier":
        """Load a model folder written by ``m3cls train`` (or a checkpoint, an HF classifier folder, or an
        ``m3cls export`` folder with ``backend="onnx"``); the contract in ``m3cls.json`` says how to read text."""
        from ..model.backends import load_backend
        from ..model.loading import load_tokenizer

        contract = read_contract(path)
        tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
        runner, config = load_backend(path, backend, device=device, precision=precision, onnx_file=onnx_file,
                                      trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        labels = LabelSet.from_config(config.id2label).names
        if contract is None:
            contract = derive_contract(labels, tokenizer, config)
        elif tuple(contract.labels) != labels:
            raise ModelLoadError(f"{path}: config.json labels ({', '.join(labels)}) differ from m3cls.json's "
                                 f"({', '.join(contract.labels)}); the folder mixes two models -- retrain or "
                                 f"re-export it")
        return cls(runner, tokenizer, contract, batch_size=batch_size, max_length=max_length,
                   long_text=long_text, stride=stride, threshold=threshold, **options)

    # -- tokens --------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, cut to max_length as the contract says, unpadded."""
        return self.encoder.encode(texts)

    def unknown_token_shares(self, texts: Sequence[str]) -> list[float]:
        """Per text, the share of its tokens that are the unknown token (``m3cls inspect``'s definition).

        High values mean the model cannot read the text (an English vocabulary given Chinese, for example);
        ``inspection.TEXT_UNK_WARN_SHARE`` is the level m3cls warns at. It counts with a private copy of the
        tokenizer, so a server may call it while another thread encodes model inputs.
        """
        from ..data.inspection import unknown_token_shares

        return unknown_token_shares(self._counting_tokenizer, list(texts))

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, without special tokens and uncut (what ``evaluate --by length`` buckets)."""
        encoded = self._counting_tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

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
        """Logits per text (per document, windows aggregated) and the number of windows each used."""
        logits, windows, _ = self._document_logits(texts)
        return logits, [len(w) for w in windows]

    def _document_logits(self, texts: Sequence[str], spans: bool = False):
        """(document logits, each document's window logits, each window's character span if asked)."""
        if not texts:
            return np.empty((0, len(self.labels)), dtype=np.float32), [], None
        if self.long_text == "truncate":
            logits = self.logits_from_ids(self.encode(texts))
            return logits, [row[None] for row in logits], None
        if spans:
            laid = self.encoder.windows_with_spans(texts)
            windows, places = [[ids for ids, _ in doc] for doc in laid], [[s for _, s in doc] for doc in laid]
        else:
            windows, places = self.encoder.windows(texts), None
        flat = self.logits_from_ids([w for group in windows for w in group])
        bounds = np.cumsum([0] + [len(group) for group in windows])
        per_doc = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        rule, names = self.rule, self.labels.names
        positive = names.index(rule.positive_label) if rule.positive_label is not None else None
        documents = np.stack([aggregate(w, rule.aggregate, rule.temperature, positive) for w in per_doc])
        return documents.astype(np.float32), per_doc, places

    # -- predictions ---------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str], temperature: float | None = None, explain: bool = False) \
            -> list[Prediction]:
        """Predict labels and probabilities; ``temperature`` None means the model's fitted one. ``explain``
        adds each word's attribution (:mod:`m3cls.inference.explain`)."""
        if explain and self.contract.task != "single_label":
            raise ConfigError(f"--explain attributes a single-label decision to words; this model's task is "
                              f"{self.contract.task}: drop --explain")
        logits, per_doc, spans = self._document_logits(texts, spans=self.segments)
        chunked = self.long_text == "chunks"
        predictions = self.predictions_from_logits(logits, temperature,
                                                   [len(w) for w in per_doc] if chunked else None)
        if spans is not None:
            t = self.temperature if temperature is None else check_temperature(temperature)
            for p, places, window_logits in zip(predictions, spans, per_doc):
                p.segments = segment_rows(places, window_logits, t, self.labels.names)
        if explain:
            self.explain(texts, predictions)
        return predictions

    def explain(self, texts: Sequence[str], predictions: list[Prediction]) -> None:
        """Fill in each prediction's ``attributions``: words and how much each moved the decided label."""
        from .explain import explain_texts

        for p, words in zip(predictions, explain_texts(self, texts, [p.decision or p.label for p in predictions])):
            p.attributions = words

    def predict_stream(self, texts: Iterable[str], temperature: float | None = None,
                       block_size: int = 2048, explain: bool = False) -> Iterator[Prediction]:
        """Predict an iterable of any length block by block, yielding results in input order."""
        iterator = iter(texts)
        while block := list(itertools.islice(iterator, block_size)):
            yield from self.predict(block, temperature, explain)

    def predictions_from_logits(self, logits: np.ndarray, temperature: float | None = None,
                                n_chunks: Sequence[int] | None = None) -> list[Prediction]:
        """Predictions from logits computed elsewhere (micro-batching, ONNX); ``temperature`` None: the model's."""
        t = self.temperature if temperature is None else check_temperature(temperature)
        if self.contract.task != "single_label":
            return self._task_predictions(logits, t, n_chunks)
        probs = softmax(logits, t)
        names = self.labels.names
        results = []
        for row, p in enumerate(probs):
            top = int(p.argmax())
            ranked = sorted(range(len(names)), key=lambda i: -p[i])
            results.append(Prediction(names[top], top, {names[i]: float(p[i]) for i in ranked},
                                      n_chunks[row] if n_chunks is not None else None))
        if self.rule.active:
            for p, decision in zip(results, self.rule.decide(logits, names)):
                p.decision = decision
        return results

    def _task_predictions(self, logits: np.ndarray, temperature: float,
                          n_chunks: Sequence[int] | None) -> list[Prediction]:
        """Multi-label: the labels over their thresholds and every sigmoid; regression: the value."""
        chunks = list(n_chunks) if n_chunks is not None else [None] * len(logits)
        if self.contract.task == "regression":
            values = self.values(logits)
            return [Prediction(None, None, None, c, value=float(v)) for v, c in zip(values, chunks)]
        names = self.labels.names
        results = []
        # the thresholds were tuned at the saved temperature: a temperature given here changes the probabilities
        # shown, never the labels decided
        shown = sigmoid(logits, temperature)
        decided = shown if temperature == self.temperature else sigmoid(logits, self.temperature)
        for row, at_saved, c in zip(shown, decided, chunks):
            ranked = sorted(range(len(names)), key=lambda i: -row[i])
            chosen = [names[i] for i in ranked if at_saved[i] >= self.thresholds[names[i]]]
            results.append(Prediction(None, None, {names[i]: float(row[i]) for i in ranked}, c, labels=chosen))
        return results

    def values(self, logits: np.ndarray) -> np.ndarray:
        """Regression outputs in the target's own units (the model learnt them standardised)."""
        scale = self.contract.target_mean or 0.0, self.contract.target_std or 1.0
        return np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)[:, 0] * scale[1] + scale[0]

    @property
    def task_info(self) -> dict:
        """What a client needs beside the predictions to read them: the task, and multi-label thresholds."""
        if self.contract.task == "multi_label":
            return {"task": "multi_label", "thresholds": dict(self.thresholds)}
        return {"task": self.contract.task} if self.contract.task != "single_label" else {}


def label_thresholds(contract: ModelContract, threshold: float | None) -> dict[str, float]:
    """Multi-label decision thresholds: ``threshold`` for every label if given, else the tuned ones (0.5)."""
    if threshold is not None:
        if contract.task != "multi_label":
            raise ConfigError(f"--threshold applies to multi-label models; this model's task is {contract.task}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ConfigError(f"--threshold must be a number between 0 and 1 (for example 0.5), got {threshold!r}")
        return {name: float(threshold) for name in contract.labels}
    if contract.task != "multi_label":
        return {}
    return {name: float((contract.thresholds or {}).get(name, DEFAULT_THRESHOLD)) for name in contract.labels}

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

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError
from ..metrics.decisions import rule_for
from ..metrics.multilabel import DEFAULT_THRESHOLD
from ..model.contract import LONG_TEXT_MODES, ModelContract
from ..model.folder import ModelFolder
from ..model.tokens import Encoded, TextEncoder
from ..tasks.labels import LabelSet
from .requests import FLAGS, Wording, check_request
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


#: a batch is cut early only once it holds this many real tokens (enough rows for efficient matrix products)
BATCH_MIN_TOKENS = 1024
#: ... and when the next text would be padded by more than this share of the batch's longest
BATCH_MAX_PADDING = 0.15
#: on a CPU, a batch never holds more than this many tokens, padding included: at 512 tokens, 8 texts per batch
#: ran 1.10x (BGE-M3's shape) and 1.22x (MiniLM) the texts/s of 32 per batch, in bf16 on 2 AMX cores
#: (docs/benchmarks/bge-m3.md); short texts still go 32 at a time. Not measured on a GPU: no cap there
BATCH_MAX_TOKENS = 4096


def length_batches(lengths: Sequence[int], batch_size: int, min_tokens: int = BATCH_MIN_TOKENS,
                   max_padding: float = BATCH_MAX_PADDING, max_tokens: int = BATCH_MAX_TOKENS) -> list[list[int]]:
    """Indices in batches, longest first: at most ``batch_size`` texts and ``max_tokens`` padded tokens (a text
    longer than that goes alone; 0: no token cap), and a new batch where padding would waste.

    Padding costs full price on a large encoder: 24 BBC texts (mean 373 tokens) in one batch padded to 512 spent
    27 % of BGE-M3's prediction time on padding (docs/benchmarks/bge-m3.md). Once a batch holds ``min_tokens``
    real tokens, a text shorter than ``(1 - max_padding)`` times the batch's longest starts the next batch.

    >>> length_batches([100, 512, 300, 500], 32, min_tokens=1000)
    [[1, 3], [2, 0]]
    >>> length_batches([512] * 10, 32)
    [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    tokens = 0
    for i in order:
        current = batches[-1] if batches else None
        if current is None or len(current) == batch_size or max_tokens and (len(current) + 1) * lengths[current[0]] \
                > max_tokens \
                or (tokens >= min_tokens and lengths[i] < (1 - max_padding) * lengths[current[0]]):
            batches.append([i])
            tokens = lengths[i]
            continue
        current.append(i)
        tokens += lengths[i]
    return batches


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
        self.task = contract.task_type
        self.labels = LabelSet(contract.labels)
        self.encoder = TextEncoder.from_contract(tokenizer, contract, max_length, stride)
        self.temperature = check_temperature(contract.temperature)
        self.thresholds = label_thresholds(contract, threshold)
        self.batch_size = batch_size
        #: padded tokens a prediction batch may hold: None chooses by device (:meth:`logits_from_ids`), 0 is no
        #: cap (a server that packs its own batches sets it)
        self.batch_tokens: int | None = None
        self.long_text = long_text
        if long_text == "chunks":
            self.encoder.check_windows()
        self.rule = rule_for(contract, long_text, aggregate, abstain_below, segments)
        self.segments = segments
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @classmethod
    def from_pretrained(cls, path: "str | ModelFolder", *, device: str = "auto", precision: str = "auto",
                        max_length: int | None = None, batch_size: int = 32, trust_remote_code: bool = False,
                        allow_pickle: bool = False, long_text: str | None = None, stride: int | None = None,
                        backend: str = "torch", onnx_file: str | None = None, threshold: float | None = None,
                        **options) -> "Classifier":
        """Load a model folder written by ``m3cls train`` (or a checkpoint, an HF classifier folder, or an
        ``m3cls export`` folder with ``backend="onnx"``); the contract in ``m3cls.json`` says how to read text.
        ``path`` may be a :class:`~m3cls.model.folder.ModelFolder` already read."""
        from ..model.backends import load_backend
        from ..model.loading import load_tokenizer

        folder = ModelFolder.read(path)
        folder.contract  # noqa: B018 (a damaged m3cls.json fails here, before anything loads)
        tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
        runner, config = load_backend(folder, backend, device=device, precision=precision, onnx_file=onnx_file,
                                      trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        contract = folder.contract_for(LabelSet.from_config(config.id2label).names, tokenizer, config)
        return cls(runner, tokenizer, contract, batch_size=batch_size, max_length=max_length,
                   long_text=long_text, stride=stride, threshold=threshold, **options)

    # -- tokens --------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, cut to max_length as the contract says, unpadded."""
        return self.encoder.encode(texts)

    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        """Each text tokenized once: the id lists the model reads (the cut text, or its windows with
        ``long_text="chunks"``), the windows' spans with ``segments``, and its unknown-token share. The first
        step of :meth:`predict`; a server runs it on its tokenizer thread, the model on the ids
        (:meth:`model_inputs`) in its batcher, then :meth:`predictions_from_encoded`."""
        chunks = self.long_text == "chunks"
        return self.encoder.read(list(texts), chunks=chunks, spans=chunks and self.segments)

    @staticmethod
    def model_inputs(encoded: Sequence[Encoded]) -> list[list[int]]:
        """The id lists the model runs on for encoded texts, in order (a text's windows one after another)."""
        return [view for item in encoded for view in item.views]

    def unknown_token_shares(self, texts: Sequence[str]) -> list[float]:
        """Per text, the share of its tokens that are the unknown token (``m3cls inspect``'s definition).

        High values mean the model cannot read the text (an English vocabulary given Chinese, for example);
        ``inspection.TEXT_UNK_WARN_SHARE`` is the level m3cls warns at. :meth:`predict_and_count` gives the
        shares with the predictions from one pass of the tokenizer.
        """
        return [item.unknown_share for item in self.encoder.read(list(texts))]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, without special tokens and uncut (what ``evaluate --by length`` buckets)."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        longest = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), longest), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return self.backend(input_ids, mask)

    def logits_from_ids(self, ids: list[list[int]], max_tokens: int | None = None) -> np.ndarray:
        """Logits for token id lists, batched longest-first (:func:`length_batches`), in the given order.
        ``max_tokens``: padded tokens a batch may hold (None: :attr:`batch_tokens`, whose None means
        :data:`BATCH_MAX_TOKENS` on a CPU and no cap on a GPU; 0: no cap)."""
        if max_tokens is None:
            max_tokens = self.batch_tokens
        if max_tokens is None:
            device = getattr(self.backend, "device", None)  # the ONNX backend runs on the CPU
            max_tokens = BATCH_MAX_TOKENS if device is None or getattr(device, "type", "cpu") == "cpu" else 0
        result = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        for chosen in length_batches([len(x) for x in ids], self.batch_size, max_tokens=max_tokens):
            result[chosen] = self._forward([ids[i] for i in chosen])
        return result

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, one row per text, in input order."""
        return self.logits_and_chunks(texts)[0]

    def logits_and_shares(self, texts: Sequence[str]) -> tuple[np.ndarray, list[float]]:
        """:meth:`logits`, and each text's unknown-token share from the same pass of the tokenizer."""
        encoded = self.encode_texts(texts)
        logits, _ = self._documents(encoded, self.logits_from_ids(self.model_inputs(encoded)))
        return logits, [item.unknown_share for item in encoded]

    def logits_and_chunks(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Logits per text (per document, windows aggregated) and the number of windows each used."""
        encoded = self.encode_texts(texts)
        logits, windows = self._documents(encoded, self.logits_from_ids(self.model_inputs(encoded)))
        return logits, [len(w) for w in windows]

    def _documents(self, encoded: Sequence[Encoded], flat: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(document logits, each document's window logits) from the logits of ``model_inputs(encoded)``."""
        if not encoded:
            return np.empty((0, len(self.labels)), dtype=np.float32), []
        if self.long_text == "truncate":
            return flat, [row[None] for row in flat]
        bounds = np.cumsum([0] + [len(item.views) for item in encoded])
        per_doc = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        rule, names = self.rule, self.labels.names
        positive = names.index(rule.positive_label) if rule.positive_label is not None else None
        documents = np.stack([aggregate(w, rule.aggregate, rule.temperature, positive) for w in per_doc])
        return documents.astype(np.float32), per_doc

    # -- predictions ---------------------------------------------------------------------------------------
    def check_request(self, temperature: float | None = None, explain: bool = False,
                      words: Wording = FLAGS) -> None:
        """Refuse what this model's task cannot do (:mod:`m3cls.inference.requests`), before any text is read;
        ``words`` names the options as the caller does (flags, or a served request's JSON fields)."""
        check_request(self.contract.task, temperature, explain, words)

    def predict(self, texts: Sequence[str], temperature: float | None = None, explain: bool = False) \
            -> list[Prediction]:
        """Predict labels and probabilities; ``temperature`` None means the model's fitted one. ``explain``
        adds each word's attribution (:mod:`m3cls.inference.explain`)."""
        return self.predict_and_count(texts, temperature, explain)[0]

    def predict_and_count(self, texts: Sequence[str], temperature: float | None = None, explain: bool = False) \
            -> tuple[list[Prediction], list[float]]:
        """:meth:`predict`, and each text's unknown-token share from the same pass of the tokenizer."""
        self.check_request(temperature, explain)
        encoded = self.encode_texts(texts)
        predictions = self.predictions_from_encoded(encoded, self.logits_from_ids(self.model_inputs(encoded)),
                                                    temperature)
        if explain:
            self.explain(texts, predictions)
        return predictions, [item.unknown_share for item in encoded]

    def predictions_from_encoded(self, encoded: Sequence[Encoded], logits: np.ndarray,
                                 temperature: float | None = None) -> list[Prediction]:
        """Predictions for texts from :meth:`encode_texts`, given the logits of their :meth:`model_inputs`
        (computed here, or by a server's batcher): windows aggregated, segments added, as :meth:`predict`."""
        documents, per_doc = self._documents(encoded, np.asarray(logits))
        chunked = self.long_text == "chunks"
        predictions = self.predictions_from_logits(documents, temperature,
                                                   [len(w) for w in per_doc] if chunked else None)
        if chunked and self.segments:
            t = self.temperature if temperature is None else check_temperature(temperature)
            for p, item, window_logits in zip(predictions, encoded, per_doc):
                p.segments = segment_rows(item.spans, window_logits, t, self.labels.names)
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
        fields = self.task.prediction_fields(logits, t, self.temperature, self.labels.names, self.thresholds,
                                             self.values)
        chunks = list(n_chunks) if n_chunks is not None else [None] * len(logits)
        results = [Prediction(row.get("label"), row.get("label_id"), row.get("probabilities"), c,
                              labels=row.get("labels"), value=row.get("value")) for row, c in zip(fields, chunks)]
        if self.rule.active:
            for p, decision in zip(results, self.rule.decide(logits, self.labels.names)):
                p.decision = decision
        return results

    def values(self, logits: np.ndarray) -> np.ndarray:
        """Regression outputs in the target's own units (the model learnt them standardised)."""
        scale = self.contract.target_mean or 0.0, self.contract.target_std or 1.0
        return np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)[:, 0] * scale[1] + scale[0]

    @property
    def task_info(self) -> dict:
        """What a client needs beside the predictions to read them: the task, and multi-label thresholds."""
        return self.task.task_info(self.thresholds)


def label_thresholds(contract: ModelContract, threshold: float | None) -> dict[str, float]:
    """Multi-label decision thresholds: ``threshold`` for every label if given, else the tuned ones (0.5)."""
    task = contract.task_type
    if threshold is not None:
        task.refuse("thresholds")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ConfigError(f"--threshold must be a number between 0 and 1 (for example 0.5), got {threshold!r}")
        return {name: float(threshold) for name in contract.labels}
    if not task.has_thresholds:
        return {}
    return {name: float((contract.thresholds or {}).get(name, DEFAULT_THRESHOLD)) for name in contract.labels}

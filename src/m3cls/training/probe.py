"""``m3cls train --method probe``: a frozen encoder, each text embedded once (and cached), a small head on top.

One forward pass per text instead of epochs of forward and backward passes brings a model like BGE-M3 onto a
CPU. The saved folder is a probe model (:mod:`m3cls.model.heads`): the encoder, ``probe_head.safetensors`` and
``m3cls.json`` with ``head: "probe"``, which predict, evaluate, calibrate, serve, export and the Python API
load like any other model.

Example::

    >>> from m3cls.training import TrainConfig, train
    >>> train(TrainConfig(model_name_or_path="bundled", data_path="train.json", method="probe"),
    ...       {"output_dir": "runs/probe"})                                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..metrics.classification import classification_report, softmax
from ..tasks.targets import single_label_only
from .augment import settings_of
from .config import TrainConfig
from .inputs import PreparedData, prepare_data
from .request import TrainRequest
from .save import check_output_dir, save_folder
from .scoring import base_contract, inspect_data, metrics_of, rung, score_and_calibrate, timed_baseline

logger = logging.getLogger(__name__)

#: TrainingArguments flags the probe reads; any other typed with --method probe is reported as unused
_USED_ARGS = {"output_dir", "seed", "per_device_eval_batch_size", "use_cpu", "fp16", "bf16", "overwrite_output_dir"}


@dataclass
class ProbeFit:
    """A fitted head, its validation logits, and what the fit cost."""

    head: object
    val_logits: np.ndarray
    y_val: np.ndarray
    seconds: float
    embedding: dict


def make_embedder(config: TrainConfig, values: dict):
    """The Embedder the training flags describe (device, precision and batch size from TrainingArguments)."""
    from ..probe.embeddings import Embedder
    from .args import resolve_precision

    device = "cpu" if values.get("use_cpu") else "auto"
    return Embedder(config.model_name_or_path, max_length=config.max_length, truncation=config.truncation,
                    long_text=config.long_text, stride=config.stride, pooling=config.pooling, device=device,
                    precision=resolve_precision(values, config.precision),
                    batch_size=values.get("per_device_eval_batch_size") or 32, cache_dir=config.embedding_cache(),
                    backend=config.embed_backend,
                    trust_remote_code=config.trust_remote_code, allow_pickle=config.allow_pickle)


def fit_probe(embedder, prepared: PreparedData, settings, augment: dict | None = None) -> ProbeFit:
    """Embed the split's texts (through the cache), fit the head on train, and score validation.

    ``augment`` (:func:`m3cls.training.augment.settings_of`) adds perturbed copies of training texts."""
    from ..probe.head import fit_head
    from .augment import probe_copies

    start = time.perf_counter()
    labels = prepared.labels
    texts, train_labels = list(prepared.train.texts), list(prepared.train.labels)
    if augment:
        extra, extra_labels = probe_copies(texts, train_labels, augment)
        logger.info("--augment: %d perturbed copies added to %d training texts", len(extra), len(texts))
        texts, train_labels = texts + extra, train_labels + extra_labels
    x_train = embedder.embed(texts)
    cached = embedder.stats["cached"]
    x_val = embedder.embed(prepared.validation.texts)
    embed_seconds = time.perf_counter() - start
    head = fit_head(x_train, np.asarray(labels.encode(train_labels, prepared.train.path)), len(labels), settings)
    seconds = time.perf_counter() - start
    texts = len(prepared.train) + len(prepared.validation)
    stats = {"texts": texts, "cached": cached + embedder.stats["cached"], "backend": embedder.backend_kind, "embedding_seconds": round(embed_seconds, 2),
             "head_seconds": round(seconds - embed_seconds, 2), "dimension": int(x_train.shape[1])}
    logger.info("probe: %s head fitted on %d embeddings of width %d in %.1f s (embedding %.1f s, %d of %d texts "
                "from the cache)", settings.kind, len(x_train), x_train.shape[1], seconds - embed_seconds,
                embed_seconds, stats["cached"], texts)
    y_val = np.asarray(labels.encode(prepared.validation.labels, prepared.validation.path))
    return ProbeFit(head, head.logits(x_val), y_val, seconds, stats)


def probe_rung(fit: ProbeFit, names: tuple[str, ...]) -> dict:
    """The probe's ladder rung from its validation logits."""
    report = classification_report(fit.y_val, fit.val_logits.argmax(axis=1), names)
    e = fit.embedding
    note = f"embedding {e['embedding_seconds']:.1f} s ({e['cached']} of {e['texts']} texts cached), head " \
           f"{e['head_seconds']:.1f} s"
    return rung("probe", report["accuracy"], report["macro_f1"], fit.seconds, note)


def train_probe(request: TrainRequest, prepared: PreparedData | None = None):
    """Fit a probe on ``config.data_path`` and save a probe model folder in the request's ``output_dir``."""
    from ..inference import distributed
    from .config import TrainResult

    config, values, output_dir = request.config, request.values, request.output_dir
    check_output_dir(output_dir, config.overwrite_output_dir, config.model_name_or_path)
    if distributed.world()[1] > 1:
        raise ConfigError("--method probe runs in one process; start it without torchrun")
    unused = sorted(request.explicit & _training_arg_names() - _USED_ARGS)
    if unused:
        logger.warning("--method probe does not use %s", ", ".join(f"--{n}" for n in unused))
    seed = request.seed
    prepared = prepared or prepare_data(config, seed)
    single_label_only(prepared.task, "--method probe")  # labels that are lists, found in the data
    embedder = make_embedder(config, values)
    with embedder.encoder.remembering():  # the texts the inspection tokenizes are not tokenized again
        inspection = inspect_data(prepared, embedder.tokenizer, config,  # its warnings before the long part
                                  full_ids=embedder.encoder.full_ids)
        augment = settings_of(config.augment, config.augment_prob, seed)
        fit = fit_probe(embedder, prepared, config.head_settings(seed), augment)
    evaluation = score_and_calibrate(fit.val_logits, fit.y_val, prepared.labels.names)
    temperature = evaluation["after"]["temperature"]
    contract = base_contract(config, prepared, embedder.precision)
    contract = embedder.contract(contract.labels).replace(
        read_options=contract.read_options, temperature=temperature, info=contract.info).with_info(
        inspection=inspection, metrics=metrics_of(evaluation),
        calibration=evaluation["calibration"], probe={**fit.head.info, **fit.embedding})
    if augment:
        contract = contract.with_info(augment=augment)
    ladder = [probe_rung(fit, prepared.labels.names)]
    if config.baseline:
        baseline, baseline_rung = timed_baseline(prepared)
        contract, ladder = contract.with_info(baseline=baseline), [baseline_rung, *ladder]
    contract = contract.with_info(ladder=ladder)

    def write_model(staging: str) -> None:
        from ..model.heads import write_head

        os.makedirs(staging, exist_ok=True)
        encoder = embedder.load_encoder()
        encoder.config.id2label, encoder.config.label2id = prepared.labels.id2label, prepared.labels.label2id
        encoder.save_pretrained(staging)
        embedder.tokenizer.save_pretrained(staging)
        write_head(staging, fit.head.layers)

    save_folder(write_model, output_dir, contract, evaluation if config.report else None,
                validation=(softmax(fit.val_logits, temperature), fit.y_val))
    return TrainResult(output_dir, contract.info["metrics"], contract, fit.val_logits)


def _training_arg_names() -> set[str]:
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments)}

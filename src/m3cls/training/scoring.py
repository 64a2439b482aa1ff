"""What fine-tuning and the probe share after fitting: scores, calibration, the data facts, and the ladder.

The ladder puts every approach tried on the same validation split side by side, with its score and its wall
time: the TF-IDF baseline, the frozen-encoder probe, and fine-tuning when it ran. A user can then see whether
fine-tuning is worth its cost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import numpy as np

from ..model.contract import ModelContract
from ..tasks import get_task
from ..tasks.targets import label_counts
from .config import TrainConfig
from .inputs import PreparedData

logger = logging.getLogger(__name__)

RUNG_NAMES = {"tfidf": "TF-IDF + logistic regression", "probe": "frozen encoder + probe head",
              "finetune": "fine-tuned encoder"}


def score_and_calibrate(logits: np.ndarray, y_true: np.ndarray, names: tuple[str, ...]) -> dict:
    """Validation scores before and after a temperature fitted on the same logits (logged on one line)."""
    from ..metrics.calibration import choose_temperature, evaluate_logits

    logits = np.asarray(logits, dtype=np.float64)
    temperature, note = choose_temperature(logits, y_true)
    if note:
        logger.warning("calibration: %s", note)
    evaluation = evaluate_logits(logits, y_true, names, temperature)
    before, after = evaluation["before"], evaluation["after"]
    evaluation["calibration"] = {"temperature": temperature, "fitted_on": "validation", "note": note,
                                 "ece_before": before["ece"], "ece_after": after["ece"],
                                 "log_loss_before": before["log_loss"], "log_loss_after": after["log_loss"]}
    logger.info("validation: accuracy %.4f, macro-F1 %.4f; temperature %.3f: ECE %.4f -> %.4f, log-loss %.4f -> "
                "%.4f", after["accuracy"], after["macro_f1"], temperature, before["ece"], after["ece"],
                before["log_loss"], after["log_loss"])
    return evaluation


def metrics_of(evaluation: dict) -> dict:
    """The scalar and per-class scores saved in ``m3cls.json`` as ``metrics``."""
    return {k: v for k, v in evaluation["after"].items() if k not in ("reliability", "temperature")}


#: changes whenever what the inspection reports changes, so older kept inspections are not reused
INSPECTION_FORMAT = 3


def inspect_data(prepared: PreparedData, tokenizer, config: TrainConfig, full_ids=None) -> dict:
    """The data inspection run at the start of training; its warnings go to the log.

    Kept in the cache folder (``--cache_dir``) under a hash of the splits' texts, labels and groups, the model's
    tokenizer and max_length, so a second run on the same data (another head, a fold, a setting) reads it.
    ``full_ids`` tokenizes (see :func:`m3cls.data.inspection.token_stats`).
    """
    from ..data.inspection import inspect_splits, warnings_for
    from ..model.bundled import resolve_model_name
    from ..probe.cache import cached_result, data_digest
    from ..probe.embeddings import model_fingerprint

    random_split = not config.validation_path and not config.group_column
    train, validation = prepared.train, prepared.validation

    def inputs() -> dict:
        return {"inspection_format": INSPECTION_FORMAT, "max_length": config.max_length,
                "model": model_fingerprint(resolve_model_name(config.model_name_or_path)),
                "random_split": random_split, "data": data_digest(train.texts, train.labels, train.groups,
                                                                  validation.texts, validation.labels,
                                                                  validation.groups)}

    report, kept = cached_result(config.embedding_cache(), "inspection", inputs, lambda: inspect_splits(
        train, validation, tokenizer, config.max_length, random_split=random_split, full_ids=full_ids))
    if kept:
        logger.info("data inspection: read from the cache (same data, tokenizer and max_length)")
    for warning in warnings_for(report, config.model_name_or_path, windows=config.long_text == "chunks"):
        logger.warning("%s", warning)
    return report


def base_contract(config: TrainConfig, prepared: PreparedData, precision: str) -> ModelContract:
    """The decision settings every method fixes, and the facts about the run known before fitting."""
    from .. import __version__

    split = "by group" if config.group_column else get_task(prepared.task).split_method
    validation = prepared.validation.path
    if validation == f"{prepared.train.path} (validation split)":
        validation = f"{config.validation_split:g} of train ({split})"
    return ModelContract(
        labels=prepared.labels.names, max_length=config.max_length, truncation=config.truncation, task=prepared.task,
        long_text=config.long_text, stride=config.stride, read_options=asdict(config.read_options()),
        info={"m3cls_version": __version__, "base_model": config.model_name_or_path, "precision": precision,
              "method": config.method,
              "data": {"train_path": prepared.train.path, "validation_path": validation,
                       "train_texts": len(prepared.train), "validation_texts": len(prepared.validation),
                       "train_counts": label_counts(prepared.task, prepared.train.labels),
                       "validation_counts": label_counts(prepared.task, prepared.validation.labels)}})


def rung(key: str, accuracy: float, macro_f1: float, seconds: float, note: str = "") -> dict:
    """One ladder entry, logged as it is made."""
    logger.info("ladder: %s: accuracy %.4f, macro-F1 %.4f, %.1f s%s", RUNG_NAMES[key], accuracy, macro_f1, seconds,
                f" ({note})" if note else "")
    return {"rung": key, "name": RUNG_NAMES[key], "accuracy": float(accuracy), "macro_f1": float(macro_f1),
            "seconds": round(float(seconds), 2), "note": note}


def timed_baseline(prepared: PreparedData) -> tuple[dict, dict]:
    """The TF-IDF baseline on the run's split, and its ladder rung with its wall time."""
    start = time.perf_counter()
    result = get_task(prepared.task).baseline(prepared)
    seconds = time.perf_counter() - start
    return result, rung("tfidf", result["accuracy"], result["macro_f1"], seconds, "fit and scored")

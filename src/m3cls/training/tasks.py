"""What training does differently for multi-label and regression.

- multi-label: a sigmoid per label and binary cross-entropy (``--class_weights balanced``: a ``pos_weight``
  per label); the validation log scores decisions at probability 0.5; at the end one temperature is fitted by
  BCE and each label's threshold is tuned on validation to maximise its F1;
- regression: MSE on the standardised target (the model's own loss for ``problem_type="regression"``); scores
  and predictions are in the target's own units.
"""

from __future__ import annotations

import logging

import numpy as np

from ..metrics.multilabel import (
    choose_shared_temperature,
    evaluate_multilabel,
    flat_multilabel_metrics,
    multilabel_report,
    sigmoid,
    tune_thresholds,
)
from ..metrics.regression import evaluate_regression, regression_report
from ..model.contract import ModelContract
from ..tasks.labels import LabelSet
from ..tasks.targets import TargetScale

logger = logging.getLogger(__name__)


def trainer_hooks(task: str, class_weights: str, targets: list, labels: LabelSet,
                  scale: TargetScale | None) -> dict:
    """``compute_metrics`` and ``compute_loss`` for the Trainer; empty for single-label (its own defaults)."""
    if task == "multi_label":
        weights = pos_weights(targets) if class_weights == "balanced" else None
        return {"compute_metrics": multilabel_metrics(labels),
                "compute_loss": weighted_bce(weights) if weights is not None else None}
    if task == "regression":
        return {"compute_metrics": regression_metrics(scale), "compute_loss": None}
    return {}


def pos_weights(targets: list) -> list[float]:
    """Per label: texts without it over texts with it, so each label's positives weigh as much as its negatives."""
    y = np.asarray(targets, dtype=np.float64)
    positives = y.sum(axis=0)
    weights = np.where(positives > 0, (len(y) - positives) / np.maximum(positives, 1), 1.0)
    logger.info("pos_weight per label: %s", ", ".join(f"{w:.3f}" for w in weights))
    return weights.tolist()


def weighted_bce(weights: list[float]):
    """Binary cross-entropy with a pos_weight per label, summed and divided by the items in the batch."""
    import torch

    pos_weight = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        total = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.float(), pos_weight=pos_weight.to(logits.device), reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return total / count

    return loss


def multilabel_metrics(labels: LabelSet):
    """compute_metrics: micro/macro/samples-F1, subset accuracy and Hamming loss at probability 0.5."""

    def compute(eval_pred) -> dict:
        predicted = (np.asarray(eval_pred.predictions) > 0).astype(np.int64)
        truth = np.asarray(eval_pred.label_ids).round().astype(np.int64)
        return flat_multilabel_metrics(multilabel_report(truth, predicted, labels.names))

    return compute


def regression_metrics(scale: TargetScale):
    """compute_metrics: RMSE, MAE, R², Pearson and Spearman in the target's own units."""

    def compute(eval_pred) -> dict:
        predicted = scale.original(np.asarray(eval_pred.predictions).reshape(-1))
        truth = scale.original(np.asarray(eval_pred.label_ids).reshape(-1))
        report = regression_report(truth, predicted)
        return {k: v for k, v in report.items() if k != "truth_std"}

    return compute


def score_validation(task: str, logits: np.ndarray, truth: np.ndarray, labels: LabelSet,
                     scale: TargetScale | None, contract: ModelContract):
    """(evaluation, contract with the fitted settings, validation_predictions rows) of the best model.

    ``truth``: a 0/1 row per text (multi-label), or the targets in their own units (regression).
    """
    if task == "multi_label":
        return _score_multilabel(logits, truth, labels, contract)
    predicted = scale.original(np.asarray(logits).reshape(-1))
    truth = np.asarray(truth, dtype=np.float64)
    evaluation = evaluate_regression(predicted, truth)
    after = evaluation["after"]
    logger.info("validation: RMSE %.4f, MAE %.4f, R2 %.4f, Pearson %.4f, Spearman %.4f", after["rmse"],
                after["mae"], after["r2"], after["pearson"], after["spearman"])
    rows = [{"index": i, "value": float(p), "true_value": float(t)} for i, (p, t) in enumerate(zip(predicted, truth))]
    return evaluation, contract.replace(target_mean=scale.mean, target_std=scale.std), rows


def _score_multilabel(logits: np.ndarray, truth: np.ndarray, labels: LabelSet, contract: ModelContract):
    names = labels.names
    truth = np.asarray(truth).round().astype(np.int64)
    temperature, note = choose_shared_temperature(logits, truth)
    if note:
        logger.warning("calibration: %s", note)
    probabilities = sigmoid(logits, temperature)
    thresholds = tune_thresholds(probabilities, truth, names)
    evaluation = evaluate_multilabel(logits, truth, names, temperature, thresholds)
    before, after = evaluation["before"], evaluation["after"]
    evaluation["calibration"] = {"temperature": temperature, "fitted_on": "validation", "shared": True,
                                 "note": note, "ece_before": before["ece"], "ece_after": after["ece"],
                                 "log_loss_before": before["log_loss"], "log_loss_after": after["log_loss"]}
    logger.info("validation: micro-F1 %.4f, macro-F1 %.4f, samples-F1 %.4f, subset accuracy %.4f; temperature "
                "%.3f: mean ECE %.4f -> %.4f", after["micro_f1"], after["macro_f1"], after["samples_f1"],
                after["subset_accuracy"], temperature, before["ece"], after["ece"])
    rows = []
    for i, (row, true_row) in enumerate(zip(probabilities, truth)):
        ranked = sorted(range(len(names)), key=lambda j: -row[j])
        rows.append({"index": i, "labels": [names[j] for j in ranked if row[j] >= thresholds[names[j]]],
                     "probabilities": {names[j]: float(row[j]) for j in ranked},
                     "true_labels": [n for n, flag in zip(names, true_row) if flag]})
    return evaluation, contract.replace(temperature=temperature, thresholds=thresholds), rows


def task_summary(task: str, metrics: dict) -> dict:
    """The scores ``m3cls train`` prints on its one JSON line."""
    keys = {"multi_label": ("micro_f1", "macro_f1", "samples_f1"), "regression": ("rmse", "mae", "r2")}.get(
        task, ("accuracy", "macro_f1"))
    return {k: round(metrics[k], 4) for k in keys}


def task_baseline(task: str, prepared) -> dict:
    """The TF-IDF baseline for the task on the same split: one-vs-rest logistic regression, or ridge."""
    from ..evaluation.baseline import multilabel_baseline, regression_baseline
    from ..tasks.targets import multi_hot

    train, validation = prepared.train, prepared.validation
    if task == "multi_label":
        return multilabel_baseline(train.texts, multi_hot(train.labels, prepared.labels), validation.texts,
                                   multi_hot(validation.labels, prepared.labels), prepared.labels.names)
    return regression_baseline(train.texts, train.labels, validation.texts, validation.labels)

"""What predict, evaluate, calibrate and inspect print and write for multi-label and regression models.

Shared by the command modules (like ``common``); single-label output stays in the command modules as it was.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError
from .common import format_temperature

_MULTI_KEYS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
_REGRESSION_KEYS = ("rmse", "mae", "r2", "pearson", "spearman")


def format_task_prediction(text: str, temperature: float, prediction, thresholds: dict[str, float]) -> str:
    """The reference-style block: multi-label (labels over threshold, every sigmoid) or regression (the value)."""
    if prediction.value is not None:
        return "\n".join([f"Text: {text}", f"Predicted value: {prediction.value:.4f}"])
    width = max(len(name) for name in prediction.probabilities)
    lines = [f"Text: {text}", f"Temperature: {format_temperature(temperature)}",
             f"Predicted labels: {', '.join(prediction.labels) or '(none over its threshold)'}",
             "Probabilities (sigmoid per label; * = at or over its threshold):"]
    lines += [f"  {name:<{width}}  {p:.4f}  threshold {thresholds[name]:.4f}{'  *' if name in prediction.labels else ''}"
              for name, p in prediction.probabilities.items()]
    return "\n".join(lines)


def truth_of(clf, labels: list, source: str) -> np.ndarray:
    """The labelled file's truth in the model's terms: class ids, a 0/1 row per text, or the targets; a label
    that does not fit the model's task or labels is one line naming the record."""
    from ..tasks.targets import check_known, multi_hot, normalize_labels

    task = clf.contract.task
    labels = normalize_labels(task, labels, source)
    if task == "single_label":
        return np.asarray(clf.labels.encode(labels, source, "the model's labels"))
    if task == "regression":
        return np.asarray(labels, dtype=np.float64)
    check_known(task, clf.labels, labels, source, "the model's labels")
    return multi_hot(labels, clf.labels)


def evaluate_task(clf, logits: np.ndarray, truth: np.ndarray) -> dict:
    """The evaluation of a multi-label or regression model at its saved settings."""
    if clf.contract.task == "regression":
        from ..metrics.regression import evaluate_regression

        return evaluate_regression(clf.values(logits), truth)
    from ..metrics.multilabel import evaluate_multilabel

    return evaluate_multilabel(logits, truth, clf.labels.names, clf.temperature, clf.thresholds)


def truth_fields(task: str, names: tuple[str, ...], truth_row) -> dict:
    """The true label, labels or value beside a prediction in ``evaluate --predictions``."""
    if task == "single_label":
        return {"true_label": names[truth_row]}
    if task == "regression":
        return {"true_value": float(truth_row)}
    return {"true_labels": [n for n, flag in zip(names, truth_row) if flag]}


def format_task_evaluation(evaluation: dict) -> str:
    """The printed evaluation of a multi-label or regression model."""
    after = evaluation["after"]
    if evaluation["task"] == "regression":
        lines = [f"{evaluation['n']} labelled texts (regression)"]
        lines += [f"{key:<16}{after[key]:>10.4f}" for key in _REGRESSION_KEYS]
        lines.append(f"{'std of truth':<16}{after['truth_std']:>10.4f}")
        return "\n".join(lines)
    before, card = evaluation["before"], after["label_cardinality"]
    lines = [f"{evaluation['n']} labelled texts (multi-label)"]
    lines += [f"{key:<16}{after[key]:>10.4f}" for key in _MULTI_KEYS]
    lines += [f"labels per text: {card['truth']:.3f} true, {card['predicted']:.3f} predicted", "",
              f"{'':<16}{'before':>10}{'after':>10}   (calibration)"]
    lines += [f"{key:<16}{before[key]:>10.4f}{after[key]:>10.4f}" for key in ("log_loss", "ece")]
    lines.append(f"{'temperature':<16}{1.0:>10.4f}{after['temperature']:>10.4f}")
    width = max(8, *(len(n) for n in after["per_label"]))
    lines += ["", f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} {'threshold':>9} "
                  f"{'ece':>9}"]
    for name, s in after["per_label"].items():
        lines.append(f"{name:<{width}} {s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f} "
                     f"{s['support']:>8} {s['threshold']:>9.4f} {after['ece_per_label'][name]:>9.4f}")
    return "\n".join(lines)


def calibrate_task(clf, logits: np.ndarray, truth: np.ndarray, model_path: str, data_path: str) -> list[str]:
    """Refit a multi-label model's shared temperature, move its thresholds so every decision stays, and save."""
    from ..metrics.multilabel import (
        DEFAULT_THRESHOLD,
        choose_shared_temperature,
        evaluate_multilabel,
        move_thresholds,
    )
    from ..model.card import refresh_model_card
    from ..model.contract import write_contract

    if clf.contract.task == "regression":
        raise ConfigError("a regression model predicts numbers, not probabilities: it has no temperature to "
                          "calibrate; 'm3cls evaluate' scores it")
    temperature, note = choose_shared_temperature(logits, truth)
    if note:
        raise ConfigError(f"{data_path}: cannot fit a temperature: {note}")
    saved = clf.contract.thresholds or {n: DEFAULT_THRESHOLD for n in clf.labels.names}
    thresholds = move_thresholds(saved, clf.temperature, temperature)
    evaluation = evaluate_multilabel(logits, truth, clf.labels.names, temperature, thresholds)
    before, after = evaluation["before"], evaluation["after"]
    contract = clf.contract.replace(temperature=temperature, thresholds=thresholds).with_info(calibration={
        "temperature": temperature, "fitted_on": data_path, "shared": True, "note": None,
        "ece_before": before["ece"], "ece_after": after["ece"], "log_loss_before": before["log_loss"],
        "log_loss_after": after["log_loss"], "thresholds_moved_from_temperature": clf.temperature})
    write_contract(model_path, contract)
    refresh_model_card(model_path, contract)  # the card's thresholds and calibration follow m3cls.json
    return [f"temperature {temperature:.4f} (shared by all labels) fitted on {len(truth)} texts of {data_path}",
            f"mean ECE {before['ece']:.4f} -> {after['ece']:.4f}",
            f"log-loss {before['log_loss']:.4f} -> {after['log_loss']:.4f} (binary cross-entropy)",
            "thresholds moved with the temperature, so every decision stays as it was",
            f"saved in {os.path.join(model_path, 'm3cls.json')}; 'predict --temperature auto' uses it"]


def format_task_inspection(part: dict) -> list[str]:
    """Extra inspect lines for one split: label sets (multi-label) or targets (regression)."""
    if "target" in part:
        t = part["target"]
        pct = ", ".join(f"{k} {v:.4g}" for k, v in t["percentiles"].items())
        return [f"  targets: mean {t['mean']:.4g}, std {t['std']:.4g}, min {t['min']:.4g}, max {t['max']:.4g}; "
                f"{pct}; {t['distinct_values']} distinct values"]
    if "label_cardinality" not in part:
        return []
    pairs = ", ".join(f"{'+'.join(c['labels'])}: {c['texts']}" for c in part["cooccurrence"][:8])
    return [f"  labels per text {part['label_cardinality']:.2f} (max {part['max_labels_per_text']}); texts with "
            f"no label: {part['texts_without_labels']}; distinct label sets: {part['distinct_label_sets']}",
            f"  labels together most often: {pairs or 'none'}"]

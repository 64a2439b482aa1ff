"""The HTML report pages of multi-label and regression evaluations (single-label's is
:func:`m3cls.reports.pages.write_report`); each task's :meth:`~m3cls.tasks.Task.write_report` picks its own.

Multi-label: the summary (micro-, macro- and samples-F1, subset accuracy, Hamming loss, label cardinality,
log-loss and mean ECE before and after calibration), per-label scores with thresholds and ECE, training curves,
a pooled reliability diagram, per-label F1 against its threshold, and the one-vs-rest baseline. Regression: the
scores, training curves, predicted against true values, residuals, and the ridge baseline.
"""

from __future__ import annotations

import html
import os

from .pages import (
    _pyplot,
    _save,
    _table,
    baseline_note,
    baseline_row,
    curves,
    intro_line,
    model_row,
    write_page,
)

_MULTI_KEYS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
_REGRESSION_KEYS = ("rmse", "mae", "r2", "pearson", "spearman")


def _reliability(plt, folder: str, evaluation: dict) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
    for ax, key in zip(axes, ("before", "after")):
        part = evaluation[key]
        bins = [b for b in part["reliability"] if b["count"]]
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=1 / 15, align="edge",
               edgecolor="black", alpha=0.7)
        ax.set_title(f"{key} (T={part['temperature']:.2f}), mean ECE {part['ece']:.3f}")
        ax.set_xlabel("label probability")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel("share of texts carrying the label")
    return _save(fig, folder, "reliability.png")


def _per_label(plt, folder: str, per_label: dict) -> str:
    names = list(per_label)
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(names) + 2), 3.5))
    ax.bar(names, [per_label[n]["f1"] for n in names], color="tab:green", label="F1")
    ax.plot(names, [per_label[n]["threshold"] for n in names], "k_", markersize=18, label="threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, folder, "per_label_f1.png")


def _scatter(plt, folder: str, points: dict) -> str:
    truth, predicted = points["truth"], points["predicted"]
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.scatter(truth, predicted, s=8, alpha=0.5)
    low, high = min(truth + predicted), max(truth + predicted)
    ax.plot([low, high], [low, high], "--", color="grey", label="predicted = true")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.legend(fontsize=8)
    return _save(fig, folder, "scatter.png")


def _residuals(plt, folder: str, points: dict) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist([p - t for t, p in zip(points["truth"], points["predicted"])], bins=30, color="tab:purple")
    ax.set_xlabel("predicted - true")
    ax.set_ylabel("texts")
    return _save(fig, folder, "residuals.png")


def _baseline_table(after: dict, baseline: dict | None, keys: tuple[str, ...], name: str, method: str | None) -> str:
    """The model beside the baseline, each row named for what it is, and where the baseline was scored."""
    if not baseline:
        return ""
    return _table([[model_row(method)] + [after[k] for k in keys],
                   [baseline_row(baseline, name)] + [baseline[k] for k in keys]],
                  ["model", *keys]) + baseline_note(baseline)


def multilabel_parts(plt, folder: str, evaluation: dict, history: list[dict], baseline: dict | None,
                     method: str | None = None):
    before, after = evaluation["before"], evaluation["after"]
    card = after["label_cardinality"]
    rows = [[k, after[k]] for k in _MULTI_KEYS] + [["labels per text, truth", card["truth"]],
                                                   ["labels per text, predicted", card["predicted"]]]
    summary = _table(rows, ["metric", "value"]) + _table(
        [[k, before[k], after[k]] for k in ("log_loss", "ece")] + [["temperature", 1.0, after["temperature"]]],
        ["probability score", "before calibration", "after calibration"])
    per_label = _table([[n, s["precision"], s["recall"], s["f1"], s["support"], s["threshold"],
                         after["ece_per_label"][n]] for n, s in after["per_label"].items()],
                       ["label", "precision", "recall", "F1", "support", "threshold", "ECE"])
    base = _baseline_table(after, baseline, _MULTI_KEYS, "TF-IDF + one-vs-rest logistic regression", method)
    images = [("Training loss and validation micro-F1", curves(plt, folder, history, "micro_f1", "micro-F1", bounded=False)),
              ("Reliability of label probabilities, before and after calibration", _reliability(plt, folder,
                                                                                                  evaluation)),
              ("Per-label F1 and decision threshold", _per_label(plt, folder, after["per_label"]))]
    return summary, [("Per label", per_label), ("Baseline", base)], images


def regression_parts(plt, folder: str, evaluation: dict, history: list[dict], baseline: dict | None,
                     method: str | None = None):
    after = evaluation["after"]
    summary = _table([[k, after[k]] for k in _REGRESSION_KEYS] + [["std of true values", after["truth_std"]]],
                     ["metric", "value"])
    base = _baseline_table(after, baseline, _REGRESSION_KEYS, "TF-IDF + ridge regression", method)
    images = [("Training loss and validation RMSE", curves(plt, folder, history, "rmse", "RMSE", bounded=False))]
    if evaluation.get("points"):
        images += [("Predicted against true values", _scatter(plt, folder, evaluation["points"])),
                   ("Residuals", _residuals(plt, folder, evaluation["points"]))]
    return summary, [("Baseline", base)], images


def write_parts_report(parts, folder: str, evaluation: dict, history: list[dict] | None = None,
                       baseline: dict | None = None, title: str = "m3cls report",
                       sections: list[tuple[str, str]] | None = None, method: str | None = None,
                       warnings: list[str] | None = None) -> str:
    """Write ``index.html`` and its PNGs for an evaluation whose task builds its page from ``parts``
    (:func:`multilabel_parts`, :func:`regression_parts`); returns the page's path. ``sections`` are extra
    (heading, HTML) parts; ``method``, ``warnings`` and the baseline's ``label``/``note`` as in
    :func:`m3cls.reports.pages.write_report`. The task's :meth:`~m3cls.tasks.Task.write_report` picks this or
    :func:`m3cls.reports.pages.write_report`.
    """
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    summary, parts_html, images = parts(plt, folder, evaluation, history or [], baseline, method)
    plt.close("all")
    body = "".join(f"<h2>{html.escape(name)}</h2>{table}" for name, table in [*parts_html, *(sections or [])]
                   if table)
    task = evaluation["task"].replace("_", "-")
    return write_page(folder, title, intro_line(evaluation["n"], method, task), f"<h2>Summary</h2>{summary}{body}",
                      images, warnings)

"""Leave-one-group-out for ``m3cls cv --holdout_group COLUMN``: the honest test of a detector on a generator
(or domain) it never saw.

In-distribution scores are near-perfect in every detection benchmark (RAID, M4); the open problem is new
generators and domains. Each value of the column (except ``--background_groups``, e.g. ``human``) is held out
in turn: its records, plus one stratified fold of the background records (so the test has negatives), are
scored by a model trained on everything else. Beside each, the same group's in-distribution score from the
plain cross-validation of the same data (its out-of-fold predictions), and the drop.

With ``--positive_label`` each group also gets AUROC, TPR at FPR 1% and 5%, detection rate and FPR
(:func:`m3cls.evaluation.slices.slice_scores`): held out, the thresholds are set on the negatives of its own
test; in distribution, on all negatives of the file.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..data.splits import holdout_folds
from ..evaluation.slices import _num, column_values, slice_scores

logger = logging.getLogger(__name__)
_BACKGROUND = "(background)"
_COMPARED = ("accuracy", "macro_f1", "auroc")


def run_holdout(config, values: dict, settings, data, labels, y: np.ndarray, in_distribution: np.ndarray,
                fit_folds) -> tuple[dict, dict]:
    """({value: {"held_out": scores, "in_distribution": scores, "drop": {...}}}, settings) for the summary.

    ``in_distribution`` are the plain cross-validation's out-of-fold probabilities of every text;
    ``fit_folds(values, folds)`` the probabilities of every text from the model that did not see its fold.
    """
    column = settings.holdout_group
    groups = column_values(config.data_path, config.read_options(), column, list(range(len(data))))
    background = {v.strip() for v in (settings.background_groups or "").split(",") if v.strip()}
    seed = values.get("seed", 42)
    held, folds = holdout_folds(groups, data.labels, data.groups, background, seed, config.data_path, column)
    logger.info("leave-one-group-out on %r: %d held-out values, background %s", column, len(held),
                ", ".join(sorted(background)) or "none")
    fold_values = dict(values, output_dir=os.path.join(values["output_dir"], "holdout"))
    probabilities = fit_folds(fold_values, folds)
    names, positive = list(labels.names), settings.positive_label
    inside = slice_scores(in_distribution, y, in_distribution.argmax(1), names, {column: groups},
                          positive)["slices"][column]
    out = {}
    for value, test in zip(held, folds):
        tags = [groups[i] if groups[i] == value else _BACKGROUND for i in test]
        scores = slice_scores(probabilities[test], y[test], probabilities[test].argmax(1), names, {column: tags},
                              positive)["slices"][column][value]
        scores["test_records"] = int(len(test))
        out[value] = {"held_out": scores, "in_distribution": inside[value],
                      "drop": _drop(inside[value], scores)}
    return out, {"column": column, "background": sorted(background), "positive_label": positive,
                 "folds": {v: [int(i) for i in f] for v, f in zip(held, folds)}}


def _drop(inside: dict, held: dict) -> dict:
    """In-distribution minus held-out, for the figures both have."""
    out = {}
    for key in _COMPARED:
        if inside.get(key) is not None and held.get(key) is not None:
            out[key] = inside[key] - held[key]
    for target in ("0.01", "0.05"):
        a = inside.get("tpr_at_fpr", {}).get(target, {}).get("rate")
        b = held.get("tpr_at_fpr", {}).get(target, {}).get("rate")
        if a is not None and b is not None:
            out[f"tpr_at_fpr_{target}"] = a - b
    return out


def format_holdout(holdout: dict) -> str:
    """The printed table: per held-out value, in-distribution against held-out."""
    lines = [f"{'held out':<20}{'n':>6}{'acc in':>9}{'acc out':>9}{'auroc in':>10}{'auroc out':>11}"]
    for value, part in holdout.items():
        inside, held = part["in_distribution"], part["held_out"]
        lines.append(f"{value[:19]:<20}{held['n']:>6}{inside['accuracy']:>9.4f}{held['accuracy']:>9.4f}"
                     f"{_num(inside.get('auroc')):>10}{_num(held.get('auroc')):>11}")
    return "\n".join(lines)


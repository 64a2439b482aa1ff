"""``m3cls stress``: what cheap perturbations do to a model's answers on labelled texts, for every task type.

Each perturbation of :mod:`m3cls.data.perturb` is applied to every text (deterministically, from the seed),
and the perturbed texts are scored like the clean ones. Per perturbation, asked of the model's Task:

- ``changed_share``: the texts the perturbation changed at all;
- how the answers moved (:meth:`~m3cls.tasks.Task.stress_change`): ``flip_rate``, the share of texts whose
  decision changed (single-label: the decided label; multi-label: the set of labels), or for regression
  ``shift_share`` (predictions moved by more than ``shift_tolerance``, a tenth of the training target's
  standard deviation) and ``mean_abs_shift``;
- the task's own scores (:meth:`~m3cls.tasks.Task.stress_scores`): accuracy and macro-F1; micro-, macro- and
  samples-F1, subset accuracy and Hamming loss; RMSE, MAE, R², Pearson and Spearman.

The ``clean`` figures are those ``m3cls evaluate`` gives for the same file. A single-label model scored as a
detector of a positive label also gets the detection rate, FPR, AUROC and the TPR at the thresholds that gave
FPR 1% and 5% on the *clean* negatives: a deployed detector keeps its threshold, so an attack that lowers every
score shows up as lost TPR.

Example::

    >>> from m3cls.evaluation.stress import stress_test
    >>> result = stress_test(clf, texts, y, ["homoglyphs", "case"], seed=0, positive="GPT")    # doctest: +SKIP
    >>> result["perturbations"]["homoglyphs"]["flip_rate"]                                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from ..data.perturb import OPTIONAL, available, perturb
from ..metrics.classification import softmax
from .slices import DETECTOR_HEAD, decided_ids, detector_text, slice_scores

logger = logging.getLogger(__name__)
_ALL = "all"
#: the detector's figures taken from the whole file scored as one slice
_DETECTOR_KEYS = ("positives", "negatives", "detection_rate", "fpr", "auroc", "tpr_at_fpr")
#: printed column heads of the change keys (the JSON keeps the keys)
_HEADS = {"flip_rate": "flipped", "shift_share": "shifted", "mean_abs_shift": "abs_shift"}


def _scored(clf, texts: list[str], y: np.ndarray, positive: str | None, thresholds=None):
    """(predictions, the task's scores with the detector's figures, the FPR thresholds) of ``texts``."""
    logits, _ = clf.logits_and_chunks(texts)
    task = clf.task
    scores = task.stress_scores(task.evaluate(logits, y, clf.labels.names, clf.temperature, clf.thresholds,
                                              clf.values))
    if positive is not None:
        result = slice_scores(softmax(logits, clf.temperature), y, decided_ids(clf, logits), list(clf.labels.names),
                              {_ALL: [_ALL] * len(y)}, positive, thresholds)
        whole = result["slices"][_ALL][_ALL]
        scores.update({key: whole[key] for key in _DETECTOR_KEYS})
        thresholds = result["slice_settings"]["fpr_thresholds"]
    return clf.predictions_from_logits(logits), scores, thresholds


def stress_test(clf, texts: Sequence[str], y: np.ndarray, names: Sequence[str], seed: int = 0,
                positive: str | None = None) -> dict[str, Any]:
    """Clean and per-perturbation figures for a classifier of any task on labelled ``texts`` (``y``: the
    task's truth, :func:`m3cls.evaluation.evaluate.truth_of`); ``positive`` (single-label only) adds the
    detector's figures.

    Perturbations whose optional package is missing are left out and listed under ``skipped``.
    """
    task, texts = clf.task, list(texts)
    if positive is not None:
        task.refuse("detection")
    y = np.asarray(y)
    settings = task.stress_settings(clf.contract)
    clean_predictions, clean, thresholds = _scored(clf, texts, y, positive)
    out: dict[str, Any] = {"task": task.name, "n": len(texts), "seed": seed, "positive_label": positive,
                           "metric_keys": list(task.stress_keys), "change_keys": list(task.change_keys),
                           **settings, "clean": clean, "perturbations": {}, "skipped": {}}
    if positive is not None:
        out["fpr_thresholds_clean"] = thresholds
    for name in names:
        if not available(name):
            out["skipped"][name] = f'needs {OPTIONAL[name]}; run: pip install "m3cls[{OPTIONAL[name]}]"'
            continue
        changed = [perturb(t, name, seed) for t in texts]
        predictions, scores, _ = _scored(clf, changed, y, positive, thresholds)
        out["perturbations"][name] = {
            "changed_share": float(np.mean([a != b for a, b in zip(texts, changed)])) if texts else 0.0,
            **task.stress_change(clean_predictions, predictions, settings), **scores}
        logger.info("stress: %s done (%s)", name, ", ".join(f"{k} {out['perturbations'][name][k]:.4f}"
                                                            for k in task.change_keys))
    return out


def format_stress(result: dict[str, Any]) -> str:
    """The printed table: one row for the clean texts, one per perturbation."""
    detector = result["positive_label"] is not None
    changes, metrics = result["change_keys"], result["metric_keys"]
    widths = [max(10, len(_HEADS.get(k, k)) + 2) for k in changes] + [max(10, len(k) + 2) for k in metrics]
    head = f"{'perturbation':<24}{'changed':>9}" + "".join(
        f"{_HEADS.get(k, k):>{w}}" for k, w in zip([*changes, *metrics], widths))
    rows = [head + (DETECTOR_HEAD if detector else "")]
    for name, s in [("clean", {**result["clean"], "changed_share": 0.0, **{k: 0.0 for k in changes}}),
                    *result["perturbations"].items()]:
        row = f"{name:<24}{s['changed_share']:>9.4f}" + "".join(
            f"{s[k]:>{w}.4f}" for k, w in zip([*changes, *metrics], widths))
        rows.append(row + (detector_text(s) if detector else ""))
    rows.append(f"\n{result['n']} labelled texts, seed {result['seed']}; " + "; ".join(_notes(result)))
    return "\n".join(rows)


def _notes(result: dict[str, Any]) -> list[str]:
    """What the printed columns mean."""
    notes = {"flip_rate": "flipped: share of texts whose decision (label, or set of labels) changed",
             "shift_share": f"shifted: share of predictions that moved by more than "
                            f"{result.get('shift_tolerance', 0.0):.4g} (a tenth of the training target's std)",
             "mean_abs_shift": "abs_shift: mean absolute change of the prediction"}
    out = [notes[k] for k in result["change_keys"] if k in notes]
    if result["positive_label"] is not None:
        out.append("tpr@X at the thresholds set for FPR X on the clean negatives")
    return out

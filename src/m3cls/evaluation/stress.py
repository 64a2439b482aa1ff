"""``m3cls stress``: what cheap perturbations do to a model's decisions on labelled texts.

Each perturbation of :mod:`m3cls.data.perturb` is applied to every text (deterministically, from the seed),
and the perturbed texts are scored like the clean ones. Per perturbation: ``changed_share`` (texts it changed
at all), ``flip_rate`` (texts whose decided label changed), ``accuracy``, and with a positive label the
detection rate, FPR, AUROC and the TPR at the thresholds that gave FPR 1% and 5% on the *clean* negatives: a
deployed detector keeps its threshold, so an attack that lowers every score shows up as lost TPR. The
``clean`` figures are those ``m3cls evaluate`` gives for the same file.

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


def _scores(clf, logits: np.ndarray, y: np.ndarray, positive: str | None, thresholds=None) -> dict[str, Any]:
    """The whole file as one slice: n, accuracy, recall, macro-F1 and the detector's figures."""
    names = list(clf.labels.names)
    result = slice_scores(softmax(logits, clf.temperature), y, decided_ids(clf, logits), names,
                          {_ALL: [_ALL] * len(y)}, positive, thresholds)
    scores = result["slices"][_ALL][_ALL]
    scores.pop("few", None)
    return {**scores, "fpr_thresholds": result["slice_settings"].get("fpr_thresholds")}


def stress_test(clf, texts: Sequence[str], y: np.ndarray, names: Sequence[str], seed: int = 0,
                positive: str | None = None) -> dict[str, Any]:
    """Clean and per-perturbation figures for a single-label classifier on labelled ``texts``.

    Perturbations whose optional package is missing are left out and listed under ``skipped``.
    """
    y = np.asarray(y)
    clean_logits, _ = clf.logits_and_chunks(list(texts))
    clean_ids = decided_ids(clf, clean_logits)
    clean = _scores(clf, clean_logits, y, positive)
    thresholds = clean.pop("fpr_thresholds")
    out: dict[str, Any] = {"n": len(texts), "seed": seed, "positive_label": positive,
                           "fpr_thresholds_clean": thresholds, "clean": clean, "perturbations": {}, "skipped": {}}
    for name in names:
        if not available(name):
            out["skipped"][name] = f'needs {OPTIONAL[name]}; run: pip install "m3cls[{OPTIONAL[name]}]"'
            continue
        changed = [perturb(t, name, seed) for t in texts]
        logits, _ = clf.logits_and_chunks(changed)
        scores = _scores(clf, logits, y, positive, thresholds)
        scores.pop("fpr_thresholds")
        out["perturbations"][name] = {
            "changed_share": float(np.mean([a != b for a, b in zip(texts, changed)])),
            "flip_rate": float((decided_ids(clf, logits) != clean_ids).mean()), **scores}
        logger.info("stress: %s done (flip rate %.4f)", name, out["perturbations"][name]["flip_rate"])
    return out


def format_stress(result: dict[str, Any]) -> str:
    """The printed table: one row for the clean texts, one per perturbation."""
    detector = result["positive_label"] is not None
    head = f"{'perturbation':<24}{'changed':>9}{'flipped':>9}{'accuracy':>10}"
    if detector:
        head += DETECTOR_HEAD
    rows = [head]
    for name, s in [("clean", {**result["clean"], "changed_share": 0.0, "flip_rate": 0.0}),
                    *result["perturbations"].items()]:
        row = f"{name:<24}{s['changed_share']:>9.4f}{s['flip_rate']:>9.4f}{s['accuracy']:>10.4f}"
        if detector:
            row += detector_text(s)
        rows.append(row)
    rows.append(f"\n{result['n']} labelled texts, seed {result['seed']}; flipped: share of decided labels that "
                f"changed" + ("; tpr@X at the thresholds set for FPR X on the clean negatives" if detector else ""))
    return "\n".join(rows)


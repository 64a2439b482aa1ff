"""Multi-label scores in plain numpy: sigmoids, decisions, F1 three ways, thresholds, temperature and ECE.

Each label has its own sigmoid, ``sigmoid(logit / T)``, and its own decision threshold: a text carries every
label whose probability reaches its threshold. Thresholds are tuned on validation data to maximise each
label's F1. One temperature, shared by all labels, is fitted by minimising the binary cross-entropy (NLL of the
0/1 truth); calibration keeps every decision as it was by moving each threshold with the temperature.

Example::

    >>> import numpy as np
    >>> truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    >>> r = multilabel_report(truth, np.array([[1, 0], [1, 0], [0, 1], [0, 0]]), ("a", "b"))
    >>> round(r["micro_f1"], 3), r["subset_accuracy"], r["hamming_loss"]
    (0.857, 0.75, 0.125)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .calibration import MIN_TEXTS, fit_temperature

DEFAULT_THRESHOLD = 0.5


def sigmoid(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Element-wise ``1 / (1 + exp(-logit / T))`` in float64, without overflow."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _f1(tp, fp, fn) -> np.ndarray:
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def multilabel_report(truth: np.ndarray, predicted: np.ndarray, names: Sequence[str],
                      thresholds: dict[str, float] | None = None) -> dict:
    """Micro-, macro- and samples-F1, subset accuracy, Hamming loss, per-label scores and label cardinality.

    Macro-F1 averages the labels that occur in ``truth``; a text with no true and no predicted label counts as
    a perfect sample (F1 1).
    """
    y, p = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    tp, fp, fn = (y & p).sum(0), (~y & p).sum(0), (y & ~p).sum(0)
    support = y.sum(0)
    precision = np.divide(tp, tp + fp, out=np.zeros(len(names)), where=(tp + fp) > 0)
    recall = np.divide(tp, support, out=np.zeros(len(names)), where=support > 0)
    f1 = _f1(tp, fp, fn)
    row_tp, row_wrong = (y & p).sum(1), (y ^ p).sum(1)
    samples = np.where(y.sum(1) + p.sum(1) > 0, _f1(row_tp, row_wrong, 0), 1.0)
    present = support > 0
    thresholds = thresholds or {}
    return {
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "samples_f1": float(samples.mean()) if len(y) else 0.0,
        "subset_accuracy": float((y == p).all(1).mean()) if len(y) else 0.0,
        "hamming_loss": float((y != p).mean()) if y.size else 0.0,
        "label_cardinality": {"truth": float(y.sum(1).mean()) if len(y) else 0.0,
                              "predicted": float(p.sum(1).mean()) if len(y) else 0.0},
        "per_label": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i]),
                             "threshold": float(thresholds.get(name, DEFAULT_THRESHOLD))}
                      for i, name in enumerate(names)},
    }


def decisions(probabilities: np.ndarray, names: Sequence[str], thresholds: dict[str, float] | None) -> np.ndarray:
    """0/1: each label's probability reached its threshold (0.5 where none is set)."""
    cut = np.array([(thresholds or {}).get(n, DEFAULT_THRESHOLD) for n in names], dtype=np.float64)
    return (np.asarray(probabilities) >= cut).astype(np.int64)


def tune_thresholds(probabilities: np.ndarray, truth: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per label, the threshold that maximises its F1 on these texts.

    Candidates lie midway between neighbouring distinct probabilities, so a threshold sits in the gap the data
    leaves, not on a text. A label without any positive text keeps 0.5.
    """
    out = {}
    for j, name in enumerate(names):
        p, y = np.asarray(probabilities)[:, j], np.asarray(truth)[:, j].astype(bool)
        out[name] = _best_threshold(p, y) if y.any() else DEFAULT_THRESHOLD
    return out


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(p) + 1)  # predict the top k texts positive
    f1 = 2 * tp / (k + y.sum())
    boundary = np.append(p[:-1] > p[1:], True)  # a cut between equal probabilities is impossible
    best = int(np.argmax(np.where(boundary, f1, -1.0)))
    below = p[best + 1] if best + 1 < len(p) else 0.0
    return float((p[best] + below) / 2)


def bce(logits: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of 0/1 ``truth`` under ``sigmoid(logits / T)``, over every text and label."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(truth, dtype=np.float64)
    return float((np.logaddexp(0.0, z) - y * z).mean())


def choose_shared_temperature(logits: np.ndarray, truth: np.ndarray) -> tuple[float, str | None]:
    """One temperature for every label by minimising BCE, or 1.0 with a reason when the data cannot fix it."""
    y = np.asarray(truth)
    if len(y) < MIN_TEXTS:
        return 1.0, f"only {len(y)} labelled texts (need {MIN_TEXTS}); temperature left at 1.0"
    if ((np.asarray(logits) > 0) == y.astype(bool)).all():
        return 1.0, (f"the model decides every label of all {len(y)} texts correctly, so no temperature can be "
                     f"fitted; temperature left at 1.0 -- calibrate on held-out data where it makes some errors")
    t = fit_temperature(logits, y, loss=bce)
    if t < 1e-3 * 1.05 or t > 1e3 / 1.05:
        return 1.0, (f"the best temperature lies at the edge of the search range ({t:.3g}); temperature left at "
                     f"1.0 -- refit with 'm3cls calibrate' on more held-out data")
    return t, None


def move_thresholds(thresholds: dict[str, float], old: float, new: float) -> dict[str, float]:
    """Thresholds under temperature ``new`` that make exactly the decisions ``thresholds`` made under ``old``.

    ``sigmoid(z / old) >= t`` holds exactly when ``z >= old * logit(t)``, that is when
    ``sigmoid(z / new) >= sigmoid(old * logit(t) / new)``.
    """
    out = {}
    for name, t in thresholds.items():
        t = min(max(t, 1e-12), 1 - 1e-12)
        out[name] = float(sigmoid(np.array([old * math.log(t / (1 - t)) / new]))[0])
    return out


def binary_ece(probabilities: np.ndarray, truth: np.ndarray, n_bins: int = 15) -> np.ndarray:
    """Per label: the weighted gap, over equal-width probability bins, between mean probability and the
    share of texts that carry the label."""
    p, y = np.asarray(probabilities, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = np.zeros(p.shape[1])
    for j in range(p.shape[1]):
        for b in np.unique(bins[:, j]):
            mask = bins[:, j] == b
            out[j] += mask.mean() * abs(y[mask, j].mean() - p[mask, j].mean())
    return out


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Every (text, label) probability pooled into equal-width bins: mean probability, positive share, count."""
    p, y = np.asarray(probabilities, dtype=np.float64).ravel(), np.asarray(truth, dtype=np.float64).ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = bins == b
        out.append({"lower": b / n_bins, "upper": (b + 1) / n_bins, "count": int(mask.sum()),
                    "confidence": float(p[mask].mean()) if mask.any() else None,
                    "accuracy": float(y[mask].mean()) if mask.any() else None})
    return out


def evaluate_multilabel(logits: np.ndarray, truth: np.ndarray, names: tuple[str, ...], temperature: float,
                        thresholds: dict[str, float] | None) -> dict:
    """Every multi-label figure m3cls reports, "before" (T=1) and "after" (the model's T) calibration.

    Decisions are the model's (its thresholds at its temperature) in both; only the probability scores
    (BCE log-loss, ECE) differ, as calibration never changes a decision.
    """
    truth = np.asarray(truth)
    thresholds = thresholds or {n: DEFAULT_THRESHOLD for n in names}
    predicted = decisions(sigmoid(logits, temperature), names, thresholds)
    report = multilabel_report(truth, predicted, names, thresholds)
    out: dict = {"task": "multi_label", "temperature": temperature, "n": int(len(truth))}
    for key, t in (("before", 1.0), ("after", temperature)):
        probs = sigmoid(logits, t)
        ece = binary_ece(probs, truth) if len(truth) else np.zeros(len(names))
        out[key] = dict(report, temperature=t, log_loss=bce(logits, truth, t) if len(truth) else 0.0,
                        ece=float(ece.mean()), ece_per_label=dict(zip(names, map(float, ece))),
                        reliability=reliability_bins(probs, truth))
    return out


def flat_multilabel_metrics(report: dict) -> dict[str, float]:
    """Scalars for the Trainer's logs."""
    keys = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
    return {k: report[k] for k in keys}

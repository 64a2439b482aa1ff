"""Regression scores in plain numpy: RMSE, MAE, R², Pearson and Spearman correlation.

A regression model learns its target standardised (``m3cls.tasks.targets.TargetScale``); every figure here is in the
target's own units.

Example::

    >>> import numpy as np
    >>> r = regression_report(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 4.0]))
    >>> round(r["rmse"], 4), round(r["mae"], 3), round(r["r2"], 2), round(r["spearman"], 1)
    (0.3536, 0.25, 0.9, 1.0)
"""

from __future__ import annotations

import numpy as np


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def regression_report(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """RMSE, MAE, R², Pearson and Spearman of predictions against the truth, and the truth's spread."""
    y, p = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if not len(y):
        return {"rmse": 0.0, "mae": 0.0, "r2": 0.0, "pearson": 0.0, "spearman": 0.0, "truth_std": 0.0}
    error = p - y
    total = ((y - y.mean()) ** 2).sum()
    return {
        "rmse": float(np.sqrt((error ** 2).mean())),
        "mae": float(np.abs(error).mean()),
        "r2": float(1 - (error ** 2).sum() / total) if total > 0 else 0.0,
        "pearson": _pearson(y, p),
        "spearman": _pearson(_ranks(y), _ranks(p)),
        "truth_std": float(y.std()),
    }


def evaluate_regression(predicted: np.ndarray, truth: np.ndarray, keep_points: bool = True) -> dict:
    """The regression figures m3cls reports; with ``keep_points`` every (truth, prediction) pair for the
    scatter plot. ``after`` holds the scores so that every task's evaluation reads alike."""
    report = regression_report(truth, predicted)
    out: dict = {"task": "regression", "n": int(len(truth)), "after": report}
    if keep_points:
        out["points"] = {"truth": [float(v) for v in truth], "predicted": [float(v) for v in predicted]}
    return out

"""Temperature scaling: the one number that makes a classifier's probabilities honest.

The temperature T minimises the negative log-likelihood of ``softmax(logits / T)`` on held-out labelled
data (Guo et al., 2017). It never changes which label wins, only how sure the model says it is.

Example::

    >>> import numpy as np
    >>> from m3cls.metrics.calibration import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> true = rng.normal(size=(4000, 3)); y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in true])
    >>> round(fit_temperature(true * 3.0, y), 1)   # logits 3x too confident -> T close to 3
    3.0
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from .classification import (
    classification_report,
    expected_calibration_error,
    log_loss,
    reliability_bins,
    softmax,
)

_LOG_T_RANGE = (math.log(1e-3), math.log(1e3))


def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true labels at a temperature."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(y_true)), y_true]).mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, iterations: int = 80, loss=nll) -> float:
    """The T in [0.001, 1000] that minimises NLL (golden-section search on log T; NLL is unimodal there).

    ``loss(logits, y_true, T)`` is the softmax NLL by default; multi-label passes the sigmoids' BCE.
    """
    if len(y_true) == 0:
        raise DataError("cannot fit a temperature on no labelled texts")
    y_true = np.asarray(y_true)
    lo, hi = _LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(logits, y_true, math.exp(a)), loss(logits, y_true, math.exp(b))
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(logits, y_true, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(logits, y_true, math.exp(b))
    return float(math.exp((lo + hi) / 2))


MIN_TEXTS = 20


def choose_temperature(logits: np.ndarray, y_true: np.ndarray) -> tuple[float, str | None]:
    """Fit T, or keep 1.0 with a reason when the data cannot identify it.

    With few texts, or texts the model separates perfectly, NLL keeps falling toward a bound of the search
    range (T -> 0 makes a never-wrong model infinitely sure); such a fit would not generalise.
    """
    if len(y_true) < MIN_TEXTS:
        return 1.0, f"only {len(y_true)} labelled texts (need {MIN_TEXTS}); temperature left at 1.0"
    if (np.asarray(logits).argmax(axis=1) == np.asarray(y_true)).all():
        return 1.0, (f"the model classifies all {len(y_true)} texts correctly, so any smaller temperature looks "
                     f"better and none can be fitted; temperature left at 1.0 -- calibrate on held-out data "
                     f"where the model makes some errors")
    t = fit_temperature(logits, y_true)
    lo, hi = (math.exp(v) for v in _LOG_T_RANGE)
    if t < lo * 1.05 or t > hi / 1.05:
        return 1.0, (f"the best temperature lies at the edge of the search range ({t:.3g}), which happens when "
                     f"the model almost never errs on these texts; temperature left at 1.0 -- refit with "
                     f"'m3cls calibrate' on more held-out data")
    return t, None


def evaluate_logits(logits: np.ndarray, y_true: np.ndarray, names: tuple[str, ...], temperature: float) -> dict:
    """Every figure m3cls reports, at T=1 ("before") and at ``temperature`` ("after")."""
    y_true = np.asarray(y_true)
    out: dict = {"temperature": temperature, "n": int(len(y_true))}
    for key, t in (("before", 1.0), ("after", temperature)):
        probs = softmax(logits, t)
        report = classification_report(y_true, probs.argmax(axis=1), names)
        report.update(log_loss=log_loss(probs, y_true), ece=expected_calibration_error(probs, y_true),
                      reliability=reliability_bins(probs, y_true), temperature=t)
        out[key] = report
    return out

"""The probe's head: scikit-learn logistic regression (default) or a small MLP, fitted on frozen embeddings.

Features are standardised for fitting, and the standardisation is folded into the first layer's weights
afterwards, so the saved head is plain dense layers (``W x + b``, ReLU between) that torch, ONNX and numpy
compute alike. A binary logistic regression (one score ``z``) becomes two logits ``[0, z]``: the softmax of
those is exactly its sigmoid.

Example::

    >>> import numpy as np
    >>> x = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
    >>> head = fit_head(x, np.array([0, 0, 1, 1]), 2)
    >>> head.logits(x).argmax(axis=1).tolist()
    [0, 0, 1, 1]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError
from ..model.heads import head_logits

logger = logging.getLogger(__name__)

PROBE_HEADS = ("logreg", "mlp")


@dataclass(frozen=True)
class HeadSettings:
    """How the head is fitted: its kind, class weights, regularisation, MLP width and seed."""

    kind: str = "logreg"
    class_weights: str = "none"
    c: float = 1.0
    hidden: int = 256
    seed: int = 42

    def check(self) -> None:
        if self.kind not in PROBE_HEADS:
            raise ConfigError(f"--probe_head {self.kind!r} is not one of: {', '.join(PROBE_HEADS)}")
        if self.class_weights not in ("none", "balanced"):
            raise ConfigError(f"--class_weights {self.class_weights!r} is not one of: none, balanced")
        if not self.c > 0:
            raise ConfigError(f"--probe_c {self.c} must be above 0 (smaller is stronger regularisation)")
        if self.hidden < 1:
            raise ConfigError(f"--probe_hidden {self.hidden} must be at least 1")


@dataclass
class Head:
    """Dense layers with the standardisation folded in; ``logits(x)`` in numpy."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    info: dict = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return head_logits(self.layers, x)


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, settings: HeadSettings = HeadSettings()) -> Head:
    """Fit the head on embeddings ``x`` and label ids ``y`` (classes 0..n_classes-1)."""
    settings.check()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(f"the probe needs at least 2 classes among its training texts, found {len(present)}")
    if len(present) < n_classes:
        logger.warning("classes %s have no training texts here; the head will never predict them",
                       sorted(set(range(n_classes)) - set(present.tolist())))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    fitter = _fit_logreg if settings.kind == "logreg" else _fit_mlp
    layers, info = fitter(z, y, settings)
    layers = _fold_standardisation(layers, mean, scale)
    layers[-1] = _all_classes(*layers[-1], present, n_classes)
    return Head(layers, {"kind": settings.kind, "class_weights": settings.class_weights, **info})


def _sample_weights(y: np.ndarray, mode: str) -> np.ndarray | None:
    """'balanced': n / (k * n_c), as scikit-learn's class_weight='balanced'."""
    if mode == "none":
        return None
    classes, counts = np.unique(y, return_counts=True)
    weight = dict(zip(classes.tolist(), (len(y) / (len(classes) * counts)).tolist()))
    return np.array([weight[v] for v in y.tolist()])


def _fit_logreg(z: np.ndarray, y: np.ndarray, settings: HeadSettings):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=settings.c, max_iter=2000)
    _quietly(model, z, y, _sample_weights(y, settings.class_weights))
    weight, bias = model.coef_, model.intercept_
    if weight.shape[0] == 1:  # binary: one score z for the second class; logits [0, z] give its sigmoid
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    return [(weight, bias)], {"c": settings.c, "iterations": int(np.max(model.n_iter_))}


def _fit_mlp(z: np.ndarray, y: np.ndarray, settings: HeadSettings):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(settings.hidden,), alpha=1e-4 / settings.c, max_iter=500,
                          random_state=settings.seed)
    _quietly(model, z, y, _sample_weights(y, settings.class_weights))
    layers = [(w.T.copy(), b.copy()) for w, b in zip(model.coefs_, model.intercepts_)]
    weight, bias = layers[-1]
    if weight.shape[0] == 1:  # binary: a logistic output unit
        layers[-1] = (np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias]))
    return layers, {"c": settings.c, "hidden": settings.hidden, "iterations": int(model.n_iter_)}


def _quietly(model, z: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> None:
    """Fit, turning scikit-learn's convergence warning into one log line."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(z, y, sample_weight=weights)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.warning("the %s head did not fully converge; a smaller --probe_c (stronger regularisation) "
                       "usually helps", type(model).__name__)


def _fold_standardisation(layers, mean: np.ndarray, scale: np.ndarray):
    """W((x - m) / s) + b = (W / s) x + (b - (W / s) m): the first layer then reads raw embeddings."""
    weight, bias = layers[0]
    folded = weight / scale
    return [(folded, bias - folded @ mean), *layers[1:]]


def _all_classes(weight: np.ndarray, bias: np.ndarray, present: np.ndarray, n_classes: int):
    """Output rows for every class id; a class with no training texts gets a logit far below the others."""
    if len(present) == n_classes:
        return weight, bias
    full_w = np.zeros((n_classes, weight.shape[1]))
    full_b = np.full(n_classes, -1e4)
    full_w[present], full_b[present] = weight, bias
    return full_w, full_b

import numpy as np
import pytest

from m3cls.metrics.calibration import choose_temperature, evaluate_logits, fit_temperature, nll
from m3cls.metrics.classification import expected_calibration_error, softmax


def _sampled(n=6000, k=4, seed=0):
    """Logits whose softmax is the true label distribution: the right temperature for them is 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = softmax(logits)
    y = np.array([rng.choice(k, p=p) for p in probs])
    return logits, y


@pytest.mark.parametrize("factor", [0.4, 1.0, 2.5, 6.0])
def test_logits_scaled_by_a_known_factor_yield_that_factor(factor):
    logits, y = _sampled()
    assert fit_temperature(logits * factor, y) == pytest.approx(factor, rel=0.06)


def test_fitted_temperature_minimises_nll_and_lowers_ece():
    logits, y = _sampled(seed=1)
    over = logits * 3.0
    t = fit_temperature(over, y)
    assert nll(over, y, t) <= min(nll(over, y, t * 0.9), nll(over, y, t * 1.1))
    before = expected_calibration_error(softmax(over), y)
    after = expected_calibration_error(softmax(over, t), y)
    assert before > 0.05 and after < before / 2


def test_unidentifiable_temperature_is_left_at_one():
    y = np.array([0, 1] * 30)
    separable = np.stack([1.0 - y, y.astype(float)], axis=1)  # never wrong: NLL keeps falling as T -> 0
    t, note = choose_temperature(separable, y)
    assert t == 1.0 and "classifies all 60 texts correctly" in note
    t, note = choose_temperature(separable[:10], y[:10])
    assert t == 1.0 and "only 10 labelled texts" in note


def test_evaluation_has_every_figure_before_and_after():
    logits, y = _sampled(n=500, k=3, seed=2)
    ev = evaluate_logits(logits * 2, y, ("a", "b", "c"), temperature=2.0)
    for key in ("before", "after"):
        part = ev[key]
        assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "log_loss", "ece", "reliability"} <= set(part)
        assert len(part["reliability"]) == 15 and sum(b["count"] for b in part["reliability"]) == 500
    assert ev["before"]["accuracy"] == ev["after"]["accuracy"]  # temperature never changes the winner
    assert ev["after"]["log_loss"] < ev["before"]["log_loss"]

import numpy as np
import pytest

from m3cls.metrics.classification import classification_report, expected_calibration_error, log_loss, softmax


def test_report_matches_hand_computed_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    r = classification_report(y_true, y_pred, ("a", "b", "c"))
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8),
                                   "support": 2}
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_log_loss_and_ece():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    assert log_loss(probs, y) == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, np.array([0, 1])) == 0.0
    # all at confidence 0.9 but only half right: ECE = |0.5 - 0.9|
    half = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error(half, np.array([0, 0, 1, 1])) == pytest.approx(0.4)


def test_softmax_temperature():
    logits = np.array([[2.0, 0.0]])
    assert softmax(logits, 100.0)[0, 0] < softmax(logits)[0, 0] < softmax(logits, 0.5)[0, 0]

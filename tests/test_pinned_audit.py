"""The audit scores every suspect by its given label, ``1 - p(given)``: a record the model finds unlikely under
the label it carries ranks first, however the rest of its probability is spread."""

import numpy as np
import pytest

from m3cls.evaluation import audit as audit


@pytest.fixture
def flag_rows(monkeypatch):
    """Confident learning replaced by a fixed choice of rows, so the ranking alone is under test."""
    def use(rows: list[int]):
        monkeypatch.setattr(audit, "label_issues", lambda y, p: np.isin(np.arange(len(y)), rows))
    return use


def test_suspects_rank_by_the_probability_of_their_given_label(flag_rows):
    names = ("a", "b", "c")
    y = np.array([0, 0, 0, 1])
    probabilities = np.array([
        [0.02, 0.98, 0.00],   # given a, nearly sure of b: the most suspect (1 - p(given) = 0.98)
        [0.30, 0.40, 0.30],   # given a, unsure: 0.70; by the suggested label it would score 0.60 and rank first
        [0.90, 0.05, 0.05],   # given a and sure of it: not flagged
        [0.20, 0.50, 0.30],   # given b, agrees: flagged anyway, 0.50
    ])
    flag_rows([0, 1, 3])
    suspects, summary = audit.find_suspects(["t0", "t1", "t2", "t3"], y, names, probabilities)
    assert [s["index"] for s in suspects] == [0, 1, 3]
    assert [s["score"] for s in suspects] == pytest.approx([0.98, 0.70, 0.50])
    assert [(s["given_label"], s["suggested_label"]) for s in suspects] == [("a", "b"), ("a", "b"), ("b", "b")]
    assert [s["probability_given"] for s in suspects] == pytest.approx([0.02, 0.30, 0.50])
    assert summary["counts"]["label_issues"] == 3

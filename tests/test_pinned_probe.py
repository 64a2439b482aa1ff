"""The probe head when a class has no training texts: every present class keeps its own id, and the missing
class is never predicted (a head that packs the present classes into ids 0..k-1 predicts the wrong labels)."""

import numpy as np
import pytest

from m3cls.metrics.classification import softmax
from m3cls.probe.head import HeadSettings, fit_head


def _clusters(ids: list[int], n_dims: int = 6, per_class: int = 40, seed: int = 0):
    """Well separated embeddings: class ``c`` sits around a centre of its own."""
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(size=n_dims) * 6 for c in ids}
    x = np.vstack([centres[c] + rng.normal(size=(per_class, n_dims)) for c in ids])
    y = np.repeat(ids, per_class)
    return x, y


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
@pytest.mark.parametrize("present,n_classes", [([0, 2], 3), ([1, 2], 3), ([0, 1, 3], 4), ([0, 2, 3], 4)])
def test_a_class_missing_from_training_keeps_the_others_at_their_ids(kind, present, n_classes):
    x, y = _clusters(present)
    head = fit_head(x, y, n_classes, HeadSettings(kind=kind))
    logits = head.logits(x)
    assert logits.shape == (len(x), n_classes)
    assert (logits.argmax(axis=1) == y).mean() > 0.95          # each text gets its own class id back
    missing = sorted(set(range(n_classes)) - set(present))
    assert softmax(logits)[:, missing].max() < 1e-6            # the missing class is never predicted

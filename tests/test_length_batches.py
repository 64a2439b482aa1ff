"""Prediction batches: longest first, at most batch_size texts, cut where padding would waste a large model's time."""

from __future__ import annotations

import random

from m3cls.inference.classifier import length_batches


def test_every_text_once_longest_first_and_batch_size_kept():
    lengths = [random.Random(i).randint(5, 512) for i in range(200)]
    batches = length_batches(lengths, 32)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert all(len(b) <= 32 for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)


def test_a_batch_is_cut_where_padding_would_waste():
    lengths = [512] * 10 + [300] * 10  # 24 BBC texts at 512 tokens look like this: padded, 40 % of a row is waste
    batches = length_batches(lengths, 32)
    assert [sorted(lengths[i] for i in b) for b in batches] == [[512] * 8, [512] * 2, [300] * 10]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded == sum(lengths)


def test_small_batches_are_not_cut():
    # short texts: a few hundred tokens in all, too little work per product to split
    lengths = [40, 30, 20, 10, 5]
    assert length_batches(lengths, 32) == [[0, 1, 2, 3, 4]]


def test_a_batch_holds_at_most_the_token_budget_padding_included():
    lengths = [random.Random(i).randint(5, 600) for i in range(300)]
    batches = length_batches(lengths, 32, max_tokens=4096)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * max(lengths[i] for i in b) <= 4096 for b in batches)
    assert [len(b) for b in length_batches([20] * 40, 32, max_tokens=4096)] == [32, 8]  # short: batch_size texts
    assert length_batches([5000, 4000], 32, max_tokens=4096) == [[0], [1]]  # too long for the budget: alone


def test_no_token_cap_when_asked():
    assert length_batches([512] * 10, 32, max_tokens=0) == [list(range(10))]


def _recorded_batches(clf, ids, **kwargs):
    import numpy as np

    sizes = []

    def forward(batch):
        sizes.append(len(batch))
        return np.zeros((len(batch), len(clf.labels)), dtype=np.float32)

    clf._forward = forward
    clf.logits_from_ids(ids, **kwargs)
    return sizes


def test_the_cap_is_for_the_cpu_only(trained_xlmr):
    """Measured on CPU cores; a GPU keeps --batch_size texts a batch, and the server runs what it packed."""
    import types

    from m3cls import Classifier

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32", batch_size=32)
    ids = [[5] * 512 for _ in range(10)]
    assert _recorded_batches(clf, ids) == [8, 2]
    assert _recorded_batches(clf, ids, max_tokens=0) == [10]
    clf.backend.device = types.SimpleNamespace(type="cuda")
    assert _recorded_batches(clf, ids) == [10]


def test_the_server_runs_its_packed_batches_uncut(trained_xlmr):
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    create_app(clf, ServeLimits())
    assert clf.batch_tokens == 0
    assert _recorded_batches(clf, [[5] * 512 for _ in range(10)]) == [10]

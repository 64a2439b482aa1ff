"""The token packer on random traffic: every batch stays within its limits, one bucket, oldest first.

The hand-made cases in test_batching.py put the longest text first; here the order is random, so a packer that
checks the batch's longest text so far instead of the incoming one (and lets a longer text in past the budget)
is caught."""

import random

from m3cls.serving.batching import Request, TokenPacker, bucket_of


def _drain(packer: TokenPacker) -> list[list]:
    batches = []
    while batch := packer.take():
        batches.append(batch)
    return batches


def test_random_traffic_keeps_every_batch_within_budget_and_bucket():
    for seed in range(300):
        _check_random_traffic(seed)


def _check_random_traffic(seed: int) -> None:
    rng = random.Random(seed)
    budget, cap = rng.choice([0, 64, 100, 256, 512, 1000]), rng.randint(1, 12)
    packer = TokenPacker(max_tokens=budget, max_texts=cap)
    requests = [Request([[7] * rng.randint(1, 120) for _ in range(rng.randint(1, 6))])
                for _ in range(rng.randint(1, 8))]
    for request in requests:
        packer.add(request)
    queued = len(packer)
    batches = _drain(packer)
    for batch in batches:
        lengths = [entry.length for entry in batch]
        assert len(lengths) <= cap, (seed, cap, lengths)
        if budget:
            assert len({bucket_of(n) for n in lengths}) == 1, (seed, lengths)
            assert len(lengths) == 1 or len(lengths) * max(lengths) <= budget, (seed, budget, lengths)
        orders = [entry.order for entry in batch]
        assert orders == sorted(orders)   # oldest first within a batch
    # every text ran exactly once, and nothing is left waiting
    assert sorted(e.order for b in batches for e in b) == list(range(1, queued + 1))
    assert len(packer) == 0 and packer.requests == 0


def test_a_longer_text_behind_shorter_ones_is_held_back():
    packer = TokenPacker(max_tokens=100, max_texts=32)
    packer.add(Request([[7] * n for n in (18, 18, 18, 32)]))   # one bucket (17-32): 4 x 32 = 128 > 100
    assert [e.length for e in packer.take()] == [18, 18, 18]
    assert [e.length for e in packer.take()] == [32]

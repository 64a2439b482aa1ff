"""The token-budget packer: budget, text cap, length buckets, fairness, and settled requests."""

from m3cls.serving.batching import Request, TokenPacker, bucket_of


def _lengths(batch) -> list[int]:
    return [entry.length for entry in batch]


def _request(*lengths: int) -> Request:
    return Request([[7] * n for n in lengths])


def test_padded_size_stays_within_the_token_budget():
    packer = TokenPacker(max_tokens=100, max_texts=32)
    packer.add(_request(*[20] * 10))
    batches = [_lengths(packer.take()) for _ in range(3)]
    assert batches == [[20] * 5, [20] * 5, []]   # 5 x 20 = 100 padded tokens per batch


def test_the_padded_size_counts_the_longest_text():
    packer = TokenPacker(max_tokens=100, max_texts=32)
    packer.add(_request(32, 18, 18, 18, 18))   # one bucket (17-32): a fourth text makes 4 x 32 = 128 > 100
    assert _lengths(packer.take()) == [32, 18, 18]
    assert _lengths(packer.take()) == [18, 18]


def test_text_cap_applies_when_the_budget_would_allow_more():
    packer = TokenPacker(max_tokens=10_000, max_texts=4)
    packer.add(_request(*[5] * 10))
    assert [len(packer.take()) for _ in range(4)] == [4, 4, 2, 0]


def test_long_and_short_texts_never_share_a_batch():
    packer = TokenPacker(max_tokens=4096, max_texts=32)
    packer.add(_request(5, 500, 6, 7))
    packer.add(_request(450, 4, 480))
    batches = [_lengths(packer.take()) for _ in range(2)]
    assert batches == [[5, 6, 7, 4], [500, 450, 480]]
    assert all(len({bucket_of(n) for n in batch}) == 1 for batch in batches)
    assert len(packer) == 0 and packer.requests == 0


def test_the_oldest_waiting_text_is_served_first():
    packer = TokenPacker(max_tokens=4096, max_texts=32)
    packer.add(_request(300))                  # the oldest: a long text alone
    for _ in range(5):
        packer.add(_request(5))                # many short ones arrive after it
    assert _lengths(packer.take()) == [300]    # it is not starved by the busier bucket
    assert _lengths(packer.take()) == [5] * 5


def test_budget_zero_is_one_queue_in_arrival_order():
    packer = TokenPacker(max_tokens=0, max_texts=3)
    packer.add(_request(5, 500))
    packer.add(_request(6, 7))
    assert [_lengths(packer.take()) for _ in range(2)] == [[5, 500, 6], [7]]


def test_per_request_mode_never_mixes_requests():
    packer = TokenPacker(max_tokens=0, max_texts=32, per_request=True)
    packer.add(_request(5, 6))
    packer.add(_request(7))
    assert [_lengths(packer.take()) for _ in range(2)] == [[5, 6], [7]]


def test_answered_requests_are_dropped_and_counted():
    packer = TokenPacker(max_tokens=4096, max_texts=32)
    gone_long, kept, gone_short = _request(300), _request(7), _request(5, 6)
    for request in (gone_long, kept, gone_short):
        packer.add(request)
    assert packer.requests == 3 and len(packer) == 4
    gone_long.future.cancel()    # the oldest text: its bucket must not be chosen for an empty batch
    gone_short.future.cancel()   # behind a live text in the same bucket: skipped, not run
    assert _lengths(packer.take()) == [7]
    assert packer.requests == 0 and len(packer) == 0


def test_full_batch_waiting():
    packer = TokenPacker(max_tokens=100, max_texts=3)
    packer.add(_request(20, 20))
    assert not packer.full_batch_waiting()
    packer.add(_request(20))
    assert packer.full_batch_waiting()          # the text cap is reached
    packer = TokenPacker(max_tokens=100, max_texts=30)
    packer.add(_request(*[20] * 4))
    assert not packer.full_batch_waiting()      # a fifth text of 20 still fits in 100 padded tokens
    packer.add(_request(20))
    assert packer.full_batch_waiting()          # a sixth would pass the budget

import pytest

from m3cls.errors import ConfigError
from m3cls.model.tokens import SpecialLayout


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_bert"])
def test_layout_finds_special_tokens(request, fixture):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(fixture))
    assert SpecialLayout.of(tokenizer) == SpecialLayout(1, 1)


def test_truncation_modes_keep_specials_and_the_chosen_part():
    layout = SpecialLayout(1, 1)
    ids = [100] + list(range(20)) + [101]
    assert layout.truncate(ids, 10, "head") == [100, 0, 1, 2, 3, 4, 5, 6, 7, 101]
    assert layout.truncate(ids, 10, "tail") == [100, 12, 13, 14, 15, 16, 17, 18, 19, 101]
    assert layout.truncate(ids, 10, "head_tail") == [100, 0, 1, 14, 15, 16, 17, 18, 19, 101]
    assert layout.truncate(ids[:5], 10, "tail") == ids[:5]


def test_windows_cover_the_text_with_overlap():
    layout = SpecialLayout(1, 1)
    ids = [100] + list(range(20)) + [101]
    windows = layout.windows(ids, 10, stride=2)
    assert all(w[0] == 100 and w[-1] == 101 and len(w) <= 10 for w in windows)
    covered = [t for w in windows for t in w[1:-1]]
    assert set(covered) == set(range(20))
    assert windows[0][1:-1][-2:] == windows[1][1:-1][:2]  # neighbours share `stride` tokens
    with pytest.raises(ConfigError, match="--stride 8 must be at least 0 and below 8"):
        layout.windows(ids, 10, stride=8)


@pytest.mark.parametrize("truncation", ["head", "tail", "head_tail"])
def test_remembering_tokenizes_each_text_once_and_changes_no_input(tiny_xlmr, truncation):
    from conftest import make_texts
    from transformers import AutoTokenizer

    from m3cls.model.tokens import TextEncoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr)
    texts = [t for t, _ in make_texts(20, seed=3)] + [""]
    plain = TextEncoder(tokenizer, 16, truncation, stride=4)
    expected = (plain.full_ids(texts), plain.encode(texts), plain.windows(texts))
    seen = []

    class Counting:  # the tokenizer, counting the texts it is given
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, batch, **kw):
            seen.extend(batch if isinstance(batch, list) else [batch])
            return tokenizer(batch, **kw)

    memo = TextEncoder(Counting(), 16, truncation, stride=4)
    seen.clear()
    with memo.remembering():
        with memo.remembering():
            first = memo.full_ids(texts[:10])
        got = (first + memo.full_ids(texts[10:]), memo.encode(texts), memo.windows(texts))
        assert sorted(seen) == sorted(texts)  # every text once, for all three, across the nested block
    assert got == expected
    seen.clear()
    memo.encode(texts[:3])
    assert len(seen) == 3  # forgotten after the block


def test_reading_a_text_whole_gives_no_indexing_errors_warning(tiny_bert):
    import logging

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from m3cls.model.tokens import TextEncoder

    class Seen(logging.Handler):
        messages: list = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tokenizer.model_max_length = 16
    encoder = TextEncoder(tokenizer, 16, "tail")
    logger, seen, before = hf_logging.get_logger("transformers.tokenization_utils_base"), Seen(), hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # a library user's default (the tests and the CLI run at "error")
    logger.addHandler(seen)
    plain = AutoTokenizer.from_pretrained(tiny_bert)
    plain.model_max_length = 16
    try:
        plain([" ".join(["word"] * 200)])  # the check can see the warning: a tokenizer m3cls did not wrap gives it
        warned_plain = any("indexing errors" in m for m in seen.messages)
        seen.messages.clear()
        encoded = encoder.read([" ".join(["word"] * 200)], chunks=True)
    finally:
        logger.removeHandler(seen)
        hf_logging.set_verbosity(before)
    assert warned_plain
    assert len(encoded[0].views) > 1  # read whole, then split into windows
    assert not any("indexing errors" in m for m in seen.messages)

"""The streaming JSON array reader decodes exactly what json.loads does, and fails where json.loads does."""

import io
import json
import random

import pytest

from m3cls.data.jsonstream import JsonSyntaxError, NotAnArray, iter_array

CHUNKS = (1, 3, 7, 64, 1 << 16)


def _records(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [{"messages": [{"role": "user", "content": "t" * rng.randint(0, 300) + f" 文本 {i} \"q\" \\ é"}],
             "score": rng.random() * 10 ** rng.randint(-5, 12), "n": -rng.randint(0, 10 ** 20), "ok": i % 2 == 0,
             "none": None} for i in range(n)]


@pytest.mark.parametrize("indent", [None, 2])
def test_decodes_what_json_loads_decodes_for_any_chunk_size(indent):
    records = _records(200)
    text = json.dumps(records, indent=indent, ensure_ascii=False)
    for chunk in CHUNKS:
        assert list(iter_array(io.StringIO(text), chunk)) == records
    for text in ("[]", " [ ] ", "[1, 2.5e3, -0, true, null, \"s\", [1, [2]]]"):
        assert list(iter_array(io.StringIO(text), 2)) == json.loads(text)


def _outcome(text: str, chunk: int | None):
    try:
        return ("ok", json.loads(text) if chunk is None else list(iter_array(io.StringIO(text), chunk)))
    except (json.JSONDecodeError, JsonSyntaxError) as e:
        return ("error", e.msg, e.lineno, e.colno)


def test_syntax_errors_name_the_line_and_column_json_loads_names():
    text = json.dumps(_records(120, seed=1), indent=2, ensure_ascii=False)
    rng = random.Random(3)
    checked = 0
    for _ in range(250):
        at = rng.randrange(len(text))
        damaged = text[:at] + rng.choice(["x", "}", ",", '"', "]", "\n", "1"]) + text[at + 1:]
        expected = _outcome(damaged, None)
        if expected[0] == "ok" and not isinstance(expected[1], list):
            continue
        checked += expected[0] == "error"
        for chunk in (7, 1000, 1 << 16):
            assert _outcome(damaged, chunk) == expected, (at, chunk)
    assert checked > 100
    for text in ("[1,]", "[1 2]", "[1, 2", "[", "[1] x", "[tru]", '[{"a": "abc', "\n\n  [1,\n 2,\n x]"):
        assert _outcome(text, 2) == _outcome(text, None), text


@pytest.mark.parametrize("text,kind", [('{"records": [1]}', "object"), ('"s"', "string"), ("12", "number"),
                                       ("true", "boolean"), ("null", "null")])
def test_a_document_that_is_not_a_list_says_what_it_is(text, kind):
    with pytest.raises(NotAnArray) as info:
        next(iter_array(io.StringIO(text)))
    assert info.value.kind == kind

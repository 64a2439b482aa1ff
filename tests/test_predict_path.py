"""One predict path: each text tokenized once (its unknown-token share from the same ids), and serve running the
Classifier's own predict steps, so windows (``--long_text chunks``) and the request checks match predict's."""

import json

import httpx
import pytest
from test_serving import LiveServer, start
from test_unknown_tokens import FOREIGN, NORMAL

from m3cls.cli import main
from m3cls.data.inspection import unknown_token_shares
from m3cls.errors import ConfigError

#: the unknown tokens sit after the first 64 tokens: a count over the ids the model reads would find none
LONG = " ".join([NORMAL] * 12 + [FOREIGN] * 3)
PROBE = "hello world"  # what TextEncoder tokenizes once to find the special tokens


class CountingTokenizer:
    """A tokenizer that records every text it is asked to tokenize."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, []

    def __call__(self, texts, *args, **kwargs):
        self.texts.extend([texts] if isinstance(texts, str) else texts)
        return self.tokenizer(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def seen(self) -> list[str]:
        return [t for t in self.texts if t != PROBE]


def predict_file(tmp_path, texts: list[str], *flags: str) -> list[dict]:
    """``m3cls predict --input`` over ``texts`` (one per line): its output rows."""
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main(["predict", "--input", str(source), "--output", str(out), *flags]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.fixture()
def counting(monkeypatch):
    """Every tokenizer loaded from here on counts its texts; the list of them."""
    from m3cls.model import loading

    made, load = [], loading.load_tokenizer
    monkeypatch.setattr(loading, "load_tokenizer", lambda *a, **k: made.append(CountingTokenizer(load(*a, **k)))
                        or made[-1])
    return made


def test_the_share_of_a_long_text_counts_every_token_from_one_pass(trained_xlmr, counting):
    from m3cls import Classifier

    clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    texts = [LONG, NORMAL, FOREIGN]
    expected = unknown_token_shares(clf.tokenizer.tokenizer, texts)   # the untruncated count, as before
    assert expected[0] > 0 and clf.tokenizer.tokenizer.unk_token_id not in clf.encode([LONG])[0]
    (tokenizer,) = counting
    tokenizer.texts.clear()
    predictions, shares = clf.predict_and_count(texts)
    assert shares == expected and [p.label for p in predictions] == [p.label for p in clf.predict(texts)]
    assert tokenizer.seen()[:3] == texts and len(tokenizer.seen()) == 6   # once each per call


def test_cli_predict_tokenizes_each_text_once(trained_xlmr, counting, tmp_path):
    rows = predict_file(tmp_path, [LONG, NORMAL, FOREIGN], "--model_path", trained_xlmr)
    (tokenizer,) = counting
    assert tokenizer.seen() == [LONG, NORMAL, FOREIGN]
    expected = unknown_token_shares(tokenizer.tokenizer, [LONG, NORMAL, FOREIGN])
    assert [r["unknown_token_share"] for r in rows] == [round(s, 4) for s in expected]


def test_serve_tokenizes_each_text_once(trained_xlmr, counting):
    with start(trained_xlmr) as live:
        (tokenizer,) = counting
        tokenizer.texts.clear()   # the warm-up text
        r = httpx.post(f"{live.url}/predict", json={"texts": [LONG, NORMAL]})
    assert r.status_code == 200 and tokenizer.seen() == [LONG, NORMAL]
    shares = [p["unknown_token_share"] for p in r.json()["predictions"]]
    assert shares == [round(s, 4) for s in unknown_token_shares(tokenizer.tokenizer, [LONG, NORMAL])]


def test_serve_long_text_chunks_answers_as_predict_does(trained_xlmr, tmp_path, monkeypatch):
    """``m3cls serve --long_text chunks``: the same windows, aggregation and fields as ``m3cls predict``."""
    from m3cls.serving import app as serving

    texts = [LONG, NORMAL, " ".join([NORMAL, "lol yeah kinda"] * 9)]
    flags = ["--model_path", trained_xlmr, "--long_text", "chunks", "--stride", "8", "--precision", "fp32"]
    expected = predict_file(tmp_path, texts, *flags)
    apps = []
    monkeypatch.setattr(serving, "serve", lambda app, *a: apps.append(app))
    assert main(["serve", *flags]) == 0
    with LiveServer(apps[0]) as live:
        served = httpx.post(f"{live.url}/predict", json={"texts": texts}).json()["predictions"]
    assert [p["n_chunks"] for p in served] == [p["n_chunks"] for p in expected] and served[0]["n_chunks"] > 1
    for got, want in zip(served, expected):
        assert {k: v for k, v in got.items() if k != "probabilities"} == \
            {k: v for k, v in want.items() if k != "probabilities"}
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_the_request_checks_are_one_rule_in_three_wordings(regression_run):
    from m3cls import Classifier

    model = regression_run["model"]
    clf = Classifier.from_pretrained(model, precision="fp32")
    with pytest.raises(ConfigError, match=r"^--temperature scales probabilities; a regression model predicts a "
                                          r"number: drop --temperature$"):
        clf.predict(["a text"], temperature=2.0)
    assert main(["predict", "--model_path", model, "--text", "a text", "--temperature", "2"]) == 2
    with start(model) as live:
        r = httpx.post(f"{live.url}/predict", json={"texts": ["a text"], "temperature": 2.0})
        explained = httpx.post(f"{live.url}/predict", json={"texts": ["a text"], "explain": True})
    assert r.status_code == 422 and r.json()["error"] == ('"temperature" scales probabilities; a regression model '
                                                          'predicts a number: leave "temperature" out')
    assert explained.status_code == 422 and explained.json()["error"].endswith(
        'this model\'s task is regression: leave "explain" out')

"""Long documents: window spans that slice the text back, every aggregation, and training on windows."""

import json
import os
import random
import shutil

import numpy as np
import pytest
from conftest import COMMON, TOPICS, TRAIN_FLAGS, make_texts, write_json

from m3cls.cli import main

LATIN = {label: [w for w in words if w.isascii()] for label, words in TOPICS.items()}


def _text(label: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(LATIN[label]) if rng.random() < 0.6 else rng.choice(COMMON) for _ in range(n))


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def test_spans_slice_the_text_back_exactly(tiny_bert):
    from transformers import AutoTokenizer

    from m3cls.model.tokens import TextEncoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    encoder = TextEncoder(tokenizer, max_length=12, stride=3)
    texts = [_text("GPT", 40, 1), "  " + _text("Human", 25, 2) + "  ", "delve lol"]
    for text, windows, laid in zip(texts, encoder.windows(texts), encoder.windows_with_spans(texts)):
        assert [ids for ids, _ in laid] == windows  # the very windows prediction classifies
        spans = [span for _, span in laid]
        assert spans[0][0] == len(text) - len(text.lstrip()) and spans[-1][1] == len(text.rstrip())
        assert all(b[0] <= a[1] for a, b in zip(spans, spans[1:]))  # neighbours overlap: nothing is lost
        for ids, (start, end) in laid:
            assert _same(text[start:end], tokenizer.decode(ids, skip_special_tokens=True))


@pytest.fixture(scope="module")
def with_rule(trained_xlmr, tmp_path_factory):
    """The trained model with a saved rule naming GPT the positive label (for --aggregate max)."""
    from m3cls.model.contract import write_contract
    from m3cls.model.folder import read_contract

    model = str(tmp_path_factory.mktemp("segments") / "model")
    shutil.copytree(trained_xlmr, model)
    contract = read_contract(model)
    write_contract(model, contract.replace(decision={"temperature": contract.temperature, "positive_label": "GPT",
                                                     "threshold": 0.5}))
    return model


def _predict(model, text, tmp_path, *flags):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": text}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", model, "--input", str(source), "--output", str(out), "--long_text",
                 "chunks", "--max_length", "16", "--stride", "4", "--segments", "--precision", "fp32", *flags]) == 0
    return json.loads(out.read_text())


def test_every_aggregation(with_rule, tmp_path):
    text = _text("Human", 60, 3) + " " + _text("GPT", 12, 4)  # a long human text with one generated part
    rows = {how: _predict(with_rule, text, tmp_path, "--aggregate", how) for how in ("mean", "max", "vote")}
    segments = rows["mean"]["segments"]
    assert len(segments) == rows["mean"]["n_chunks"] > 3
    assert all(_same(text[s["start"]:s["end"]], text[s["start"]:s["end"]].strip()) for s in segments)
    names = ["GPT", "Human"]
    window_probs = np.array([[s["probabilities"][n] for n in names] for s in segments])
    # mean: softmax of the mean window logits = the normalised geometric mean of the window probabilities
    geometric = np.exp(np.log(window_probs).mean(axis=0))
    assert np.allclose([rows["mean"]["probabilities"][n] for n in names], geometric / geometric.sum(), atol=1e-6)
    # max: the window most likely GPT stands for the document
    top = window_probs[window_probs[:, 0].argmax()]
    assert np.allclose([rows["max"]["probabilities"][n] for n in names], top, atol=1e-6)
    # vote: the share of windows whose top label it is
    shares = np.bincount(window_probs.argmax(axis=1), minlength=2) / len(window_probs)
    assert np.allclose([rows["vote"]["probabilities"][n] for n in names], shares, atol=1e-4)
    assert rows["max"]["decision"] == "GPT" and rows["vote"]["label"] == "Human"


@pytest.mark.parametrize("flags,message", [
    (["--segments"], "--segments needs --long_text chunks"),
    (["--aggregate", "vote"], "--aggregate needs --long_text chunks"),
])
def test_segment_flags_need_chunks(trained_xlmr, tmp_path, capsys, flags, message):
    out = tmp_path / "o.jsonl"
    source = tmp_path / "in.txt"
    source.write_text("delve lol\n")
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
                 *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_aggregate_max_needs_a_positive_label(trained_xlmr, capsys):
    assert main(["predict", "--model_path", trained_xlmr, "--text", "delve lol", "--long_text", "chunks",
                 "--aggregate", "max"]) == 2
    assert "--aggregate max asks whether any part" in capsys.readouterr().err


def test_training_on_windows_scores_documents(tiny_xlmr, tmp_path):
    pairs = [(t, y) for t, y in make_texts(60, seed=51) if len(t.split()) >= 10][:30]
    train = write_json(tmp_path / "train.json", [{"text": t, "label": y} for t, y in pairs])
    val_pairs = make_texts(12, seed=52)
    val = write_json(tmp_path / "val.json", [{"text": t, "label": y} for t, y in val_pairs])
    out = tmp_path / "model"
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", train, "--validation_path", val,
                 "--output_dir", str(out), *TRAIN_FLAGS, "--num_train_epochs", "1", "--max_length", "16",
                 "--long_text", "chunks", "--stride", "4", "--no_baseline", "--no_report"]) == 0
    meta = json.load(open(out / "m3cls.json"))
    assert meta["long_text"] == "chunks" and meta["stride"] == 4
    assert meta["history"][-1]["step"] > 2 * -(-len(pairs) // 8)  # windows, not texts, were the items
    expected = [json.loads(line) for line in open(out / "validation_predictions.jsonl")]
    assert len(expected) == len(val_pairs)  # one row per document
    assert main(["predict", "--model_path", str(out), "--input", val, "--output", str(tmp_path / "p.jsonl"),
                 "--precision", "fp32"]) == 0
    got = [json.loads(line) for line in open(tmp_path / "p.jsonl")]
    assert max(g["n_chunks"] for g in got) > 1
    assert max(abs(e["probabilities"][n] - g["probabilities"][n]) for e, g in zip(expected, got)
               for n in e["probabilities"]) < 1e-4
    assert os.path.isfile(out / "config.json")

"""End to end through the command line a user types: train, then predict; bad input exits 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TRAIN_FLAGS, make_texts, messages_record, write_json

from m3cls.cli import main


def test_trained_folder_is_plain_hf_with_label_names(trained_xlmr):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(trained_xlmr)
    assert model.config.id2label == {0: "GPT", 1: "Human"}
    names = set(os.listdir(trained_xlmr))
    assert {"config.json", "model.safetensors", "tokenizer.json", "m3cls.json"} <= names
    assert not any(n.endswith(".tmp") for n in names)
    meta = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    assert meta["max_length"] == 64 and meta["labels"] == ["GPT", "Human"]
    assert sum(meta["data"]["train_counts"].values()) + sum(meta["data"]["validation_counts"].values()) == 120
    assert set(meta["metrics"]["per_class"]) == {"GPT", "Human"}
    assert meta["metrics"]["macro_f1"] >= 0.9  # the synthetic task is easy: training must have learnt it


def test_predict_text_prints_label_and_probabilities(trained_xlmr, capsys):
    text = "furthermore the tapestry of this landscape is crucial"
    assert main(["predict", "--model_path", trained_xlmr, "--text", text]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Text: {text}\nTemperature: 1.0\nPredicted label: GPT (id 0)\nProbabilities:\n")
    probs = [float(line.split()[-1]) for line in out.splitlines()[4:]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3


def _predict_json(model, text, *extra):
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["predict", "--model_path", model, "--text", text, "--json", *extra]) == 0
    return json.loads(buffer.getvalue())


def test_temperature_flattens_and_sharpens(trained_xlmr):
    text = "lol yeah honestly kinda weird stuff"
    base = _predict_json(trained_xlmr, text)
    hot = _predict_json(trained_xlmr, text, "--temperature", "50")
    cold = _predict_json(trained_xlmr, text, "--temperature", "0.2")
    assert base["label"] == "Human" and set(base) == {"index", "label", "label_id", "probabilities",
                                                      "unknown_token_share"}
    top = base["label"]
    assert cold["probabilities"][top] > base["probabilities"][top] > hot["probabilities"][top]
    assert abs(hot["probabilities"]["GPT"] - 0.5) < 0.05


def test_batch_output_keeps_input_order(trained_xlmr, tmp_path):
    pairs = make_texts(70, seed=5)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in pairs))
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
                 "--batch_size", "4", "--precision", "fp32"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    from m3cls import Classifier

    clf = Classifier.from_pretrained(trained_xlmr, batch_size=1, precision="fp32")
    single = [clf.predict([t])[0] for t, _ in pairs]  # one text at a time: no sorting, no padding
    # the file is batched longest-first; each row must still hold its own text's prediction, in input order
    # (the index field alone proves nothing: it numbers the lines as they are written)
    assert len(rows) == 70 and [r["index"] for r in rows] == list(range(70))
    assert [r["label"] for r in rows] == [p.label for p in single]
    np.testing.assert_allclose([r["probabilities"]["GPT"] for r in rows],
                               [p.probabilities["GPT"] for p in single], atol=1e-5)
    accuracy = sum(r["label"] == label for r, (_, label) in zip(rows, pairs)) / len(pairs)
    assert accuracy >= 0.9


def test_predict_accepts_a_checkpoint_folder(trained_xlmr, capsys):
    checkpoints = sorted(n for n in os.listdir(trained_xlmr) if n.startswith("checkpoint-"))
    assert checkpoints
    folder = os.path.join(trained_xlmr, checkpoints[-1])
    assert main(["predict", "--model_path", folder, "--text", "delve robust", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("GPT", "Human")


def test_training_is_deterministic_with_a_seed(tiny_bert, tmp_path):
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=2)])
    outs = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", out,
                     *TRAIN_FLAGS, "--num_train_epochs", "1"]) == 0
        outs.append(out)
    from m3cls import Classifier

    texts = [t for t, _ in make_texts(10, seed=8)]
    a, b = (Classifier.from_pretrained(o).logits(texts) for o in outs)
    assert (a == b).all()


@pytest.fixture
def bad_files(tmp_path):
    good = [messages_record(t, y) for t, y in make_texts(20, seed=3)]
    return {
        "one_class": write_json(tmp_path / "one.json", [messages_record("a text", "Human")] * 5),
        "val_unseen": write_json(tmp_path / "val.json", [messages_record("text", "Bard")]),
        "good": write_json(tmp_path / "good.json", good),
        "not_list": write_json(tmp_path / "obj.json", {"messages": []}),
        "no_messages": write_json(tmp_path / "nomsg.json", good[:2] + [{"msgs": []}]),
    }


@pytest.mark.parametrize("case,extra,message", [
    ("one_class", [], "every one of the 5 records has the label 'Human'"),
    ("good", ["--validation_path", "VAL"], "record 1 has label 'Bard', which never appears in"),
    ("good", ["--labels", "GPT,Humna"], "--labels entry 'Humna' matches no label"),
    ("not_list", [], "the top level is a JSON object, expected a list"),
    ("no_messages", [], "record 3 has no 'messages' field"),
    ("good", ["--model_name_or_path", "/no/such/model"], "cannot load model '/no/such/model'"),
])
def test_bad_training_input_exits_2_and_writes_nothing(bad_files, tmp_path, capsys, case, extra, message):
    out = tmp_path / "out"
    extra = [bad_files["val_unseen"] if e == "VAL" else e for e in extra]
    args = ["train", "--data_path", bad_files[case], "--output_dir", str(out), "--model_name_or_path",
            "bundled", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("m3cls train: error: ") and message in err[0], err
    assert not out.exists()


def test_predict_bad_input(trained_xlmr, tmp_path, capsys):
    cases = [
        (["--text", "x", "--temperature", "0"], "temperature must be a number above 0"),
        (["--text", "x", "--temperature", "hot"], "--temperature 'hot' must be a number above 0 or 'auto'"),
        (["--input", str(tmp_path / "none.jsonl")], "none.jsonl: file not found"),
    ]
    for extra, message in cases:
        assert main(["predict", "--model_path", trained_xlmr, *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["predict", "--model_path", str(tmp_path), "--text", "x"]) == 2
    assert "not a model folder (no config.json)" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": \n')
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(bad), "--output", str(out)]) == 2
    assert "bad.jsonl: line 2 is not valid JSON" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*.partial"))


def test_real_process_exit_code_and_no_traceback(tmp_path):
    missing = tmp_path / "missing.json"
    result = subprocess.run([sys.executable, "-m", "m3cls", "train", "--data_path", str(missing), "--output_dir",
                             str(tmp_path / "o"), "--model_name_or_path", "bundled"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"m3cls train: error: {missing}: file not found; check the path"
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()

"""The model contract: what training decided about turning text into inputs reaches every consumer.

Training with --truncation tail or head_tail must give, on its own validation texts, the probabilities that
predict and evaluate compute later, through torch and through ONNX fp32; and a folder written before the
contract existed (no format_version) still loads.
"""

import json
import os

import numpy as np
import pytest
from conftest import make_texts, write_json

from m3cls.cli import main

MAX_LENGTH = 16  # far below most synthetic texts (4 to 60 words), so the truncation mode matters


def _probabilities(path: str) -> np.ndarray:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    names = sorted(rows[0]["probabilities"])
    return np.array([[row["probabilities"][n] for n in names] for row in rows])


@pytest.fixture(scope="module", params=["tail", "head_tail"])
def trained(request, tiny_xlmr, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"contract-{request.param}")
    train = write_json(folder / "train.json", [{"text": t, "label": y} for t, y in make_texts(120, seed=31)])
    val_pairs = make_texts(40, seed=32)
    val = write_json(folder / "val.json", [{"text": t, "label": y} for t, y in val_pairs])
    out = str(folder / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", train, "--validation_path", val,
                 "--output_dir", out, "--truncation", request.param, "--max_length", str(MAX_LENGTH),
                 "--num_train_epochs", "4", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
                 "--precision", "fp32", "--seed", "3", "--no_baseline", "--no_report"]) == 0
    return request.param, out, val, [t for t, _ in val_pairs]


def test_the_contract_records_the_truncation_mode(trained):
    mode, out, _, _ = trained
    saved = json.load(open(os.path.join(out, "m3cls.json")))
    assert saved["truncation"] == mode and saved["format_version"] == 2 and saved["max_length"] == MAX_LENGTH


def test_predict_and_evaluate_see_what_training_saw(trained, tmp_path):
    mode, out, val, _ = trained
    expected = _probabilities(os.path.join(out, "validation_predictions.jsonl"))
    assert main(["predict", "--model_path", out, "--input", val, "--output", str(tmp_path / "p.jsonl"),
                 "--precision", "fp32"]) == 0
    assert np.abs(_probabilities(str(tmp_path / "p.jsonl")) - expected).max() < 1e-4
    assert main(["evaluate", "--model_path", out, "--data_path", val, "--predictions", str(tmp_path / "e.jsonl"),
                 "--precision", "fp32"]) == 0
    assert np.abs(_probabilities(str(tmp_path / "e.jsonl")) - expected).max() < 1e-4


def test_onnx_fp32_sees_what_training_saw(trained, tmp_path):
    mode, out, val, _ = trained
    expected = _probabilities(os.path.join(out, "validation_predictions.jsonl"))
    onnx_dir = str(tmp_path / "onnx")
    assert main(["export", "--model_path", out, "--output", onnx_dir]) == 0
    assert json.load(open(os.path.join(onnx_dir, "m3cls.json")))["truncation"] == mode
    assert main(["predict", "--model_path", onnx_dir, "--backend", "onnx", "--input", val, "--output",
                 str(tmp_path / "p.jsonl")]) == 0
    assert np.abs(_probabilities(str(tmp_path / "p.jsonl")) - expected).max() < 1e-4


def test_head_truncation_would_give_other_probabilities(trained):
    # the checks above mean something only if the mode changes the inputs of these texts
    from m3cls import Classifier

    mode, out, _, texts = trained
    clf = Classifier.from_pretrained(out, precision="fp32")
    as_trained = clf.predict(texts)
    clf_head = Classifier(clf.backend, clf.tokenizer, clf.contract.replace(truncation="head"))
    as_head = clf_head.predict(texts)
    gap = max(abs(a.probabilities[n] - b.probabilities[n]) for a, b in zip(as_trained, as_head)
              for n in a.probabilities)
    assert gap > 1e-3


def test_a_folder_from_before_the_contract_still_loads(trained_xlmr, tmp_path):
    import shutil

    from m3cls import Classifier

    old = str(tmp_path / "old")
    shutil.copytree(trained_xlmr, old)
    saved = json.load(open(os.path.join(old, "m3cls.json")))
    version1 = {k: v for k, v in saved.items() if k not in ("format_version", "truncation", "long_text", "stride",
                                                            "task", "head", "thresholds")}
    write_json(os.path.join(old, "m3cls.json"), version1)
    clf = Classifier.from_pretrained(old, precision="fp32")
    assert (clf.contract.truncation, clf.contract.long_text, clf.max_length) == ("head", "truncate", 64)
    assert clf.temperature == pytest.approx(saved["temperature"])
    texts = [t for t, _ in make_texts(10, seed=33)]
    now = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    assert np.allclose(clf.logits(texts), now.logits(texts))


def test_a_damaged_or_newer_contract_is_refused_in_one_line(trained_xlmr, tmp_path, capsys):
    import shutil

    bad = str(tmp_path / "bad")
    shutil.copytree(trained_xlmr, bad)
    saved = json.load(open(os.path.join(bad, "m3cls.json")))
    write_json(os.path.join(bad, "m3cls.json"), dict(saved, truncation="middle"))
    assert main(["predict", "--model_path", bad, "--text", "delve lol"]) == 2
    err = capsys.readouterr().err
    assert "m3cls.json: invalid truncation 'middle'" in err and err.count("\n") == 1
    write_json(os.path.join(bad, "m3cls.json"), dict(saved, format_version=99))
    assert main(["predict", "--model_path", bad, "--text", "delve lol"]) == 2
    assert "newer than this m3cls understands" in capsys.readouterr().err
    for field, value in (("labels", None), ("labels", 3), ("read_options", "text")):
        write_json(os.path.join(bad, "m3cls.json"), dict(saved, **{field: value}))
        assert main(["predict", "--model_path", bad, "--text", "delve lol"]) == 2
        err = capsys.readouterr().err
        assert f"m3cls.json: invalid {field} {value!r}" in err and err.count("\n") == 1

"""ONNX export and the onnxruntime backend: parity with torch, int8 agreement, CLI end to end."""

import json
import os

import numpy as np
import pytest
from conftest import make_texts

from m3cls.cli import main


@pytest.fixture(scope="module")
def exported(trained_xlmr, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("onnx") / "model-onnx")
    assert main(["export", "--model_path", trained_xlmr, "--output", out, "--quantize", "int8"]) == 0
    return out


def test_export_folder_stands_alone(exported):
    import onnx

    names = set(os.listdir(exported))
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", "config.json", "m3cls.json"} <= names
    graph = onnx.load(os.path.join(exported, "model.onnx")).graph
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert inputs == {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}
    assert json.load(open(os.path.join(exported, "m3cls.json")))["onnx"]["file"] == "model.int8.onnx"


def test_fp32_matches_torch_and_int8_agrees(exported, trained_xlmr):
    from m3cls import Classifier
    from m3cls.metrics import softmax

    texts = [t for t, _ in make_texts(200, seed=21)]
    torch_clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    int8_clf = Classifier.from_pretrained(exported, backend="onnx")
    fp32_clf = Classifier.from_pretrained(exported, backend="onnx", onnx_file="model.onnx")
    reference = torch_clf.logits(texts)
    assert np.abs(softmax(fp32_clf.logits(texts)) - softmax(reference)).max() < 1e-3
    agreement = (int8_clf.logits(texts).argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.99


def test_int8_answer_does_not_depend_on_the_batch(exported):
    # dynamic int8 takes its activation scale over the whole input, so texts run alone, unpadded
    from m3cls import Classifier

    texts = [t for t, _ in make_texts(60, seed=22)]
    together = Classifier.from_pretrained(exported, backend="onnx", batch_size=32).logits(texts)
    clf = Classifier.from_pretrained(exported, backend="onnx", batch_size=5)
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = clf.logits([texts[i] for i in order])
    assert np.array_equal(shuffled, together[order])
    assert np.array_equal(clf.logits(texts[:1]), together[:1])


def test_predict_with_the_onnx_backend_through_the_cli(exported, tmp_path, capsys):
    assert main(["predict", "--model_path", exported, "--backend", "onnx", "--text", "delve tapestry",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "GPT"
    assert main(["predict", "--model_path", exported, "--text", "x"]) == 2
    assert "is an ONNX export; add --backend onnx" in capsys.readouterr().err
    assert main(["export", "--model_path", exported.replace("model-onnx", "nothing"), "--output",
                 str(tmp_path / "o")]) == 2

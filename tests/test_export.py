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
    from m3cls.metrics.classification import softmax

    texts = [t for t, _ in make_texts(200, seed=21)]
    torch_clf = Classifier.from_pretrained(trained_xlmr, precision="fp32")
    int8_clf = Classifier.from_pretrained(exported, backend="onnx")
    fp32_clf = Classifier.from_pretrained(exported, backend="onnx", onnx_file="model.onnx")
    reference = torch_clf.logits(texts)
    assert np.abs(softmax(fp32_clf.logits(texts)) - softmax(reference)).max() < 1e-3
    agreement = (int8_clf.logits(texts).argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.99


def test_int8_is_static_and_batched_and_its_answer_does_not_depend_on_the_batch(exported):
    # static int8: activation scales fixed at export, so texts run in padded batches and a text's logits
    # are the same bits whatever its neighbours, the batch size or the order
    import onnx

    from m3cls import Classifier

    graph = onnx.load(os.path.join(exported, "model.int8.onnx")).graph
    assert not [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 4
    texts = [t for t, _ in make_texts(60, seed=22)]
    together = Classifier.from_pretrained(exported, backend="onnx", batch_size=32)
    assert together.backend.per_text is False
    expected = together.logits(texts)
    clf = Classifier.from_pretrained(exported, backend="onnx", batch_size=5)
    order = np.random.default_rng(0).permutation(len(texts))
    assert np.array_equal(clf.logits([texts[i] for i in order]), expected[order])
    assert np.array_equal(clf.logits(texts[:1]), expected[:1])
    info = json.load(open(os.path.join(exported, "m3cls.json")))["onnx"]["int8"]
    assert info["calibration_texts"] == 120 and info["calibrated_tensors"] >= 4


def test_int8_calibration_data_is_required_and_sampled(trained_xlmr, tmp_path, capsys):
    from m3cls.errors import ConfigError
    from m3cls.export.onnx import calibration_texts
    from m3cls.model.folder import read_contract

    contract = read_contract(trained_xlmr)
    texts = calibration_texts(contract, None, 16)  # the training data named in m3cls.json
    assert len(texts) == 16 and len(set(texts)) > 8
    assert calibration_texts(contract, None, 16) == texts  # a fixed-seed sample
    missing = contract.with_info(data={"train_path": str(tmp_path / "gone.json")})
    with pytest.raises(ConfigError, match="--calibration_data FILE"):
        calibration_texts(missing, None, 16)
    assert main(["export", "--model_path", trained_xlmr, "--output", str(tmp_path / "o"), "--quantize", "int8",
                 "--calibration_data", str(tmp_path / "nothing.jsonl")]) == 2
    assert "nothing.jsonl" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def test_predict_with_the_onnx_backend_through_the_cli(exported, tmp_path, capsys):
    assert main(["predict", "--model_path", exported, "--backend", "onnx", "--text", "delve tapestry",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "GPT"
    assert main(["predict", "--model_path", exported, "--text", "x"]) == 2
    assert "is an ONNX export; add --backend onnx" in capsys.readouterr().err
    assert main(["export", "--model_path", exported.replace("model-onnx", "nothing"), "--output",
                 str(tmp_path / "o")]) == 2


def test_a_large_graph_keeps_its_weights_in_one_file_beside_it(trained_xlmr, tmp_path, monkeypatch):
    """BGE-M3 in fp32 (2.27 GB) is over protobuf's 2 GiB: the threshold set to 0 sends a tiny model the same
    way. One data file per graph, no torch leftovers, and the same answers as torch and the plain export."""
    from m3cls import Classifier
    from m3cls.export import onnx as onnx_export
    from m3cls.metrics.classification import softmax

    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    out = tmp_path / "large"
    assert main(["export", "--model_path", trained_xlmr, "--output", str(out), "--quantize", "int8"]) == 0
    names = set(os.listdir(out))
    assert {"model.onnx", "model.onnx.data", "model.int8.onnx", "model.int8.onnx.data"} <= names
    assert not {"torch-export"} & names and not any(n.startswith("onnx__") or "calibration" in n for n in names)
    assert os.path.getsize(out / "model.onnx") < os.path.getsize(out / "model.onnx.data") / 3  # weights outside
    info = json.load(open(out / "m3cls.json"))["onnx"]
    assert info["external_data"] is True and "model.onnx.data" in info["files"]
    texts = [t for t, _ in make_texts(60, seed=22)]
    reference = Classifier.from_pretrained(trained_xlmr, precision="fp32").logits(texts)
    fp32 = Classifier.from_pretrained(str(out), backend="onnx", onnx_file="model.onnx").logits(texts)
    assert np.abs(softmax(fp32) - softmax(reference)).max() < 1e-3
    int8 = Classifier.from_pretrained(str(out), backend="onnx").logits(texts)
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.95

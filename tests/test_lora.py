"""LoRA through PEFT: label names survive, predict/export load it with no extra flags, merging works."""

import json
import os

import numpy as np
import pytest
from conftest import TRAIN_FLAGS

from m3cls.cli import main


@pytest.fixture(scope="module")
def lora_run(tiny_xlmr, messages_file, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("lora") / "adapter")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *TRAIN_FLAGS, "--lora_r", "4", "--learning_rate", "1e-2", "--no_report"]) == 0
    return out


def test_adapter_folder_keeps_labels_and_reports_its_share(lora_run):
    names = set(os.listdir(lora_run))
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "m3cls.json"} <= names
    assert json.load(open(os.path.join(lora_run, "config.json")))["id2label"] == {"0": "GPT", "1": "Human"}
    lora = json.load(open(os.path.join(lora_run, "m3cls.json")))["lora"]
    assert 0 < lora["trainable_share"] < 0.5 and lora["optimizer_and_gradient_memory_saved_mb"] > 0


def test_predict_and_export_load_the_adapter_with_no_extra_flags(lora_run, tmp_path, capsys):
    assert main(["predict", "--model_path", lora_run, "--text", "furthermore delve tapestry", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["probabilities"]) == {"GPT", "Human"}
    assert main(["export", "--model_path", lora_run, "--output", str(tmp_path / "onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", "--model_path", str(tmp_path / "onnx"), "--backend", "onnx", "--text", "lol",
                 "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probabilities"]) == {"GPT", "Human"}


def test_merge_lora_writes_a_plain_model(tiny_xlmr, messages_file, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = str(tmp_path / "merged")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *TRAIN_FLAGS, "--num_train_epochs", "1", "--lora_r", "4", "--merge_lora", "--no_report",
                 "--no_baseline"]) == 0
    assert not os.path.exists(os.path.join(out, "adapter_config.json"))
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "GPT", 1: "Human"}


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_bert"])
@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_trains_every_model(request, fixture, lora, messages_file, tmp_path):
    out = str(tmp_path / "gc")
    extra = ["--lora_r", "4"] if lora else []
    assert main(["train", "--model_name_or_path", request.getfixturevalue(fixture), "--data_path", messages_file,
                 "--output_dir", out, *TRAIN_FLAGS, "--num_train_epochs", "1", "--gradient_checkpointing",
                 "--no_report", "--no_baseline", *extra]) == 0
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    assert meta["history"] and all(e.get("loss", 0) == e.get("loss", 0) for e in meta["history"])  # no NaN


def test_overwriting_a_lora_run_with_a_full_run_loads_the_full_model(lora_run, tiny_xlmr, messages_file,
                                                                    tmp_path):
    import shutil

    from transformers import AutoModelForSequenceClassification

    from m3cls import Classifier

    out = tmp_path / "reused"
    shutil.copytree(lora_run, out)  # the LoRA run trained 3 epochs; its checkpoints outnumber the next run's
    lora_steps = {int(n.split("-")[1]) for n in os.listdir(out) if n.startswith("checkpoint-")}
    (out / "notes.txt").write_text("mine")  # not a run's output: kept
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir",
                 str(out), *TRAIN_FLAGS, "--num_train_epochs", "1", "--overwrite_output_dir", "--no_report",
                 "--no_baseline"]) == 0
    names = set(os.listdir(out))
    assert not {"adapter_config.json", "adapter_model.safetensors", "README.md", "report"} & names
    assert "lora" not in json.load(open(out / "m3cls.json")) and "notes.txt" in names
    steps = {int(n.split("-")[1]) for n in names if n.startswith("checkpoint-")}
    assert steps and max(steps) < max(lora_steps)  # no checkpoint of the earlier run to resume or predict from
    for step in steps:
        assert not os.path.exists(out / f"checkpoint-{step}" / "adapter_config.json")
    # what m3cls loads is the full model that plain transformers loads, not the base model plus a stale adapter
    texts = ["furthermore delve tapestry", "lol yeah kinda"]
    clf = Classifier.from_pretrained(str(out), precision="fp32")
    plain = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    import torch

    with torch.no_grad():
        expected = plain(**clf.encoder.tokenizer(texts, return_tensors="pt", padding=True)).logits.numpy()
    np.testing.assert_allclose(clf.logits(texts), expected, atol=1e-5)

"""LoRA through PEFT: label names survive, predict/export load it with no extra flags, merging works."""

import json
import math
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


def _logits(model, clf, texts):
    """A torch model's logits for texts encoded the way the Classifier encodes them."""
    import torch

    ids = clf.encode(texts)
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), clf.tokenizer.pad_token_id)
    mask = torch.zeros_like(input_ids)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=mask).logits.numpy()


def test_predict_and_export_load_the_adapter_with_no_extra_flags(lora_run, tiny_xlmr, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from m3cls import Classifier
    from m3cls.metrics.classification import softmax

    texts = ["furthermore delve tapestry", "lol yeah kinda weird", "the a of and moreover crucial"]
    clf = Classifier.from_pretrained(lora_run, precision="fp32")
    # the reference: PEFT's own unmerged forward over the base model, with the saved labels
    base = AutoModelForSequenceClassification.from_pretrained(tiny_xlmr, config=AutoConfig.from_pretrained(lora_run))
    peft_model = PeftModel.from_pretrained(base, lora_run).eval()
    expected = _logits(peft_model, clf, texts)
    np.testing.assert_allclose(clf.logits(texts), expected, atol=1e-6)
    with peft_model.disable_adapter():  # the base model with its fresh head
        assert np.abs(_logits(peft_model, clf, texts) - expected).max() > 1e-3
    for name, parameter in peft_model.named_parameters():  # the trained head without the LoRA matrices
        if "lora_B" in name:
            parameter.data.zero_()
    assert np.abs(_logits(peft_model, clf, texts) - expected).max() > 1e-4  # measured: 7e-4, noise 1e-7

    assert main(["predict", "--model_path", lora_run, "--text", texts[0], "--json", "--precision", "fp32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["probabilities"]) == {"GPT", "Human"}
    probabilities = softmax(expected[:1], clf.temperature)[0]
    assert result["probabilities"]["GPT"] == pytest.approx(float(probabilities[0]), abs=1e-6)
    assert main(["export", "--model_path", lora_run, "--output", str(tmp_path / "onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", "--model_path", str(tmp_path / "onnx"), "--backend", "onnx", "--text", texts[0],
                 "--json"]) == 0
    onnx = json.loads(capsys.readouterr().out)["probabilities"]
    assert onnx["GPT"] == pytest.approx(result["probabilities"]["GPT"], abs=1e-4)


def test_merge_lora_writes_a_plain_model(tiny_xlmr, messages_file, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    out = str(tmp_path / "merged")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *TRAIN_FLAGS, "--num_train_epochs", "1", "--lora_r", "4", "--merge_lora", "--no_report",
                 "--no_baseline"]) == 0
    assert not os.path.exists(os.path.join(out, "adapter_config.json"))
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "GPT", 1: "Human"}
    # the adapters were merged: the LoRA-targeted weights moved, every other encoder weight is the base's
    targets = json.load(open(os.path.join(out, "m3cls.json")))["lora"]["target_modules"]
    base = load_file(os.path.join(tiny_xlmr, "model.safetensors"))
    merged = {k: v for k, v in model.state_dict().items() if k.startswith("roberta.")}
    moved = {k for k, v in merged.items() if not np.array_equal(v.numpy(), base[k[len("roberta."):]].numpy())}
    expected = {k for k in merged if k.endswith(".weight") and k.split(".")[-2] in targets}
    assert targets and expected and moved == expected


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_bert"])
@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_trains_every_model(request, fixture, lora, messages_file, tmp_path):
    out = str(tmp_path / "gc")
    extra = ["--lora_r", "4"] if lora else []
    assert main(["train", "--model_name_or_path", request.getfixturevalue(fixture), "--data_path", messages_file,
                 "--output_dir", out, *TRAIN_FLAGS, "--num_train_epochs", "1", "--gradient_checkpointing",
                 "--no_report", "--no_baseline", *extra]) == 0
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    losses = [e["loss"] for e in meta["history"] if "loss" in e]
    assert losses and all(math.isfinite(loss) for loss in losses)  # no NaN, no inf


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
    assert not {"adapter_config.json", "adapter_model.safetensors", "report"} & names
    assert "library_name: peft" not in (out / "README.md").read_text()  # the new run's card, not the adapter's
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

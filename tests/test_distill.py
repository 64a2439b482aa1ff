"""m3cls distill: the student reproduces the teacher, K-layer students, bad input, task types."""

import json
import os

import numpy as np
import pytest
from conftest import make_marker_texts

from m3cls.cli import main

FLAGS = ["--per_device_train_batch_size", "8", "--learning_rate", "1e-5", "--seed", "7", "--precision", "fp32",
         "--logging_steps", "50", "--no_report", "--no_baseline", "--no_ladder"]


def _probabilities(model, texts):
    from m3cls import Classifier

    predictions = Classifier.from_pretrained(model, precision="fp32").predict(texts, temperature=1.0)
    return np.array([[p.probabilities[n] for n in sorted(p.probabilities)] for p in predictions])


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    texts = [t for t, _ in make_marker_texts(80, seed=21)]
    path = tmp_path_factory.mktemp("distill") / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path), texts


def test_student_that_is_the_teacher_reproduces_its_probabilities(marker_xlmr, unlabelled, tmp_path, capsys):
    trained_xlmr = marker_xlmr  # a teacher far from 0.5/0.5, so a student learning anything else would show
    data, texts = unlabelled
    assert np.abs(_probabilities(trained_xlmr, texts)[:, 0] - 0.5).mean() > 0.15
    out = tmp_path / "student"
    assert main(["distill", "--teacher", trained_xlmr, "--student", trained_xlmr, "--data_path", data,
                 "--output_dir", str(out), "--num_train_epochs", "3", *FLAGS, "--learning_rate", "5e-4"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["teacher"] == trained_xlmr and printed["scored_against"] == "the teacher's decisions"
    assert np.abs(_probabilities(str(out), texts) - _probabilities(trained_xlmr, texts)).max() < 0.05
    contract = json.load(open(out / "m3cls.json"))
    teacher = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    assert contract["labels"] == teacher["labels"] and contract["read_options"] == teacher["read_options"]
    assert contract["distillation"]["teacher"] == trained_xlmr
    assert trained_xlmr in (out / "README.md").read_text()


def test_k_layer_student_keeps_k_layers_and_learns(marker_xlmr, unlabelled, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from m3cls.training.distill import kept_layers

    assert kept_layers(6, 3) == [1, 3, 5] and kept_layers(6, 2) == [2, 5] and kept_layers(2, 1) == [1]
    data, texts = unlabelled
    out = tmp_path / "one-layer"
    assert main(["distill", "--teacher", marker_xlmr, "--student_layers", "1", "--data_path", data,
                 "--output_dir", str(out), "--num_train_epochs", "3", *FLAGS, "--learning_rate", "3e-3"]) == 0
    assert AutoConfig.from_pretrained(out).num_hidden_layers == 1
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert len(model.base_model.encoder.layer) == 1
    agree = (_probabilities(str(out), texts).argmax(1) == _probabilities(marker_xlmr, texts).argmax(1)).mean()
    assert agree >= 0.8


def test_teacher_outputs_are_computed_once(trained_xlmr, unlabelled, tmp_path, monkeypatch):
    from m3cls.inference.classifier import Classifier
    from m3cls.training.distill import teacher_logits

    calls = []
    original = Classifier.logits
    monkeypatch.setattr(Classifier, "logits", lambda self, texts: calls.append(len(texts)) or original(self, texts))
    texts = unlabelled[1]
    first = teacher_logits(trained_xlmr, texts, str(tmp_path / "cache"), batch_size=4)
    assert calls == [32, 32, 16]  # blocks of 8 batches
    second = teacher_logits(trained_xlmr, texts, str(tmp_path / "cache"), batch_size=4)
    assert calls == [32, 32, 16] and np.allclose(first, second, atol=1e-6)


def test_student_tokenizer_must_match_with_student_layers(trained_xlmr, tiny_bert, unlabelled, tmp_path, capsys):
    data, _ = unlabelled
    out = tmp_path / "bad"
    assert main(["distill", "--teacher", trained_xlmr, "--student", tiny_bert, "--student_layers", "1",
                 "--data_path", data, "--output_dir", str(out), *FLAGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "tokenizer" in err and len(err.splitlines()) == 1 and not out.exists()


def test_multilabel_teacher_gives_sigmoid_targets_and_refitted_thresholds(multilabel_run, tmp_path):
    out = tmp_path / "ml-student"
    assert main(["distill", "--teacher", multilabel_run["model"], "--student_layers", "2", "--data_path",
                 multilabel_run["train"], "--output_dir", str(out), "--num_train_epochs", "1", *FLAGS]) == 0
    contract = json.load(open(out / "m3cls.json"))
    assert contract["task"] == "multi_label" and set(contract["thresholds"]) == set(contract["labels"])
    assert contract["scored_against"] == "the given labels"


def test_soft_targets_per_task():
    from m3cls.training.distill import soft_targets

    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    t1 = soft_targets("single_label", logits, 2.0, [None, "b"], ("a", "b"), 0.5, (0.0, 1.0))
    assert t1[0] == pytest.approx([1 / (1 + np.exp(-1)), 1 - 1 / (1 + np.exp(-1))], abs=1e-6)
    assert t1[1] == pytest.approx([0.25, 0.75])
    t2 = soft_targets("multi_label", logits, 1.0, [None, None], ("a", "b"), 0.0, (0.0, 1.0))
    assert t2[0] == pytest.approx([1 / (1 + np.exp(-2)), 0.5], abs=1e-6)
    t2 = soft_targets("multi_label", logits, 1.0, [None, ("b",)], ("a", "b"), 0.5, (0.0, 1.0))
    assert t2[1] == pytest.approx([0.25, 0.75])  # the given label set mixed in
    t3 = soft_targets("regression", np.array([[1.5]]), 2.0, [7.0], ("value",), 0.5, (5.0, 2.0))
    assert t3[0] == pytest.approx([1.25])


def test_probe_teacher_distils_into_a_sequence_classifier(tiny_xlmr, unlabelled, tmp_path):
    from conftest import make_marker_texts, write_json

    data = write_json(tmp_path / "train.json", [{"text": t, "label": y} for t, y in make_marker_texts(60, seed=3)])
    teacher = tmp_path / "probe"
    assert main(["train", "--method", "probe", "--model_name_or_path", tiny_xlmr, "--data_path", data,
                 "--output_dir", str(teacher), "--max_length", "48", "--precision", "fp32", "--no_report"]) == 0
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher), "--student_layers", "1", "--data_path", unlabelled[0],
                 "--output_dir", str(out), "--num_train_epochs", "1", *FLAGS]) == 0
    contract = json.load(open(out / "m3cls.json"))
    assert contract["head"] == "sequence_classification" and contract["distillation"]["layers_kept"] == [1]

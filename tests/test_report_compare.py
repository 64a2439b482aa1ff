"""Reports compare like with like (issue 23): evaluate's baseline is refit on the evaluated file's own split, or
the training-time figure is labelled for what it is; the model is named by its method (fine-tuned, probe, LoRA);
a report on fewer than 30 texts says, in a box, that its scores mean little."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_texts, messages_record, write_json

from m3cls.cli import main
from m3cls.model.contract import ModelContract
from m3cls.tasks import get_task

WARNING_BOX = '<p class="warning"><strong>Warning:</strong> '


def _labelled(path, pairs) -> str:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in pairs), encoding="utf-8")
    return str(path)


def _report(folder) -> str:
    return open(os.path.join(folder, "index.html"), encoding="utf-8").read()


@pytest.mark.parametrize("info, head, title", [
    ({"m3cls_version": "1", "method": "finetune"}, "sequence_classification", "fine-tuned"),
    ({"m3cls_version": "1", "method": "probe"}, "probe", "probe"),
    ({"m3cls_version": "1", "method": "finetune", "lora": {"r": 4, "merged": False}}, "sequence_classification",
     "LoRA"),
    ({"m3cls_version": "1", "method": "finetune", "lora": {"r": 4, "merged": True}}, "sequence_classification",
     "LoRA, merged"),
    ({"m3cls_version": "1", "method": "distill"}, "sequence_classification", "distilled"),
    ({"m3cls_version": "0.3"}, "sequence_classification", "fine-tuned"),   # before the method was recorded
    ({}, "sequence_classification", "plain transformers"),                 # a folder m3cls did not train
])
def test_the_contract_names_how_the_model_was_made(info, head, title):
    contract = ModelContract(labels=("a", "b"), max_length=32, head=head, info=info,
                             pooling="mean" if head == "probe" else None)
    assert contract.method_title == title


def test_each_task_refits_its_baseline_on_the_files_own_split():
    texts = [t for t, _ in make_texts(40, seed=5)]
    gpt = np.array([int("delve" in t or "tapestry" in t or "crucial" in t) for t in texts])
    ids = np.arange(40) % 2
    cases = [("single_label", ids, ("GPT", "Human"), "accuracy"),
             ("multi_label", np.stack([ids, 1 - ids, gpt], axis=1), ("GPT", "Human", "x"), "micro_f1"),
             ("regression", ids * 10.0 + np.arange(40) / 40, ("value",), "rmse")]
    for task, truth, names, key in cases:
        name = get_task(task).baseline_name
        figures, why = get_task(task).file_baseline(texts, truth, names)
        assert why is None and key in figures, task
        assert figures["label"] == f"{name}, 5-fold cross-validated on this file", task
        assert "its 40 texts" in figures["note"] and "4 of its 5 folds" in figures["note"], task
    # the words decide the label, so the refit baseline must have learned them from the other folds
    figures, _ = get_task("single_label").file_baseline(texts, ids, ("GPT", "Human"))
    assert figures["accuracy"] > 0.8


def test_the_refit_baseline_scores_each_text_by_a_fit_that_never_saw_it():
    # labels drawn at random: a baseline that saw the text it scores would learn it by heart (near 1.0);
    # scored out of fold it can only guess
    rng = np.random.default_rng(3)
    texts = [" ".join(f"w{rng.integers(100000)}" for _ in range(8)) for _ in range(80)]
    figures, _ = get_task("single_label").file_baseline(texts, rng.integers(0, 2, 80), ("a", "b"))
    assert figures["accuracy"] < 0.75


def test_a_file_that_cannot_carry_a_refit_says_why():
    texts = [t for t, _ in make_texts(40, seed=5)]
    assert get_task("single_label").file_baseline(texts[:6], np.arange(6) % 2, ("a", "b"))[1] == \
        "the file has 6 texts, fewer than the 10 a cross-validated refit needs"
    assert get_task("single_label").file_baseline(texts, np.zeros(40, int), ("a", "b"))[1] == \
        "it needs two classes with at least 2 texts each"
    assert get_task("single_label").file_baseline(texts, np.r_[np.zeros(39, int), 1], ("a", "b"))[1] == \
        "it needs two classes with at least 2 texts each"
    assert get_task("multi_label").file_baseline(texts, np.ones((40, 2), int), ("a", "b"))[1] == \
        "no label is on some of its texts and off others"
    assert get_task("regression").file_baseline(texts, np.full(40, 3.0), ("value",))[1] == \
        "every text has the same value"
    # TF-IDF finds no word in punctuation: a reason, not a traceback
    assert get_task("single_label").file_baseline(["!", "?"] * 8, np.arange(16) % 2, ("a", "b"))[1] \
        .startswith("TF-IDF cannot be fitted on its texts (empty vocabulary")


def test_evaluate_falls_back_to_the_training_figure_labelled_as_such():
    from m3cls.evaluation.evaluate import report_baseline

    contract = ModelContract(labels=("a", "b"), max_length=32, info={
        "baseline": {"name": "tfidf_logreg", "accuracy": 1.0, "macro_f1": 1.0}, "data": {"validation_texts": 3}})
    clf = SimpleNamespace(task=get_task("single_label"), labels=SimpleNamespace(names=("a", "b")), contract=contract)
    shown = report_baseline(clf, ["x y", "y z", "z x"], np.array([0, 1, 0]))
    assert shown["label"] == "TF-IDF baseline on the training run's validation split (3 texts), not this file"
    assert shown["accuracy"] == 1.0 and "fewer than the 10" in shown["note"]
    assert report_baseline(SimpleNamespace(**{**vars(clf), "contract": contract.replace(info={})}),
                           ["x"], np.array([0])) is None


def _legends(monkeypatch) -> dict:
    """The legend texts of each figure a report saves, by file name."""
    from m3cls.reports import pages

    seen, save = {}, pages._save

    def recording(fig, folder, name):
        seen[name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        return save(fig, folder, name)

    monkeypatch.setattr(pages, "_save", recording)
    return seen


def test_reports_name_the_method_and_where_the_baseline_was_scored(tmp_path, monkeypatch):
    from m3cls.metrics.calibration import evaluate_logits
    from m3cls.metrics.multilabel import evaluate_multilabel
    from m3cls.metrics.regression import evaluate_regression

    legends = _legends(monkeypatch)
    rng = np.random.default_rng(0)
    baseline = {"accuracy": 0.5, "macro_f1": 0.4, "micro_f1": 0.5, "samples_f1": 0.5, "subset_accuracy": 0.2,
                "hamming_loss": 0.3, "rmse": 1.0, "mae": 1.0, "r2": 0.1, "pearson": 0.3, "spearman": 0.3,
                "label": "BASELINE <here>", "note": "scored on the same texts"}
    y = rng.integers(0, 3, 60)
    evaluations = {
        "single_label": evaluate_logits(rng.normal(size=(60, 3)), y, ("a", "b", "c"), 1.0),
        "multi_label": dict(evaluate_multilabel(rng.normal(size=(60, 2)), rng.integers(0, 2, (60, 2)), ("a", "b"),
                                                1.0, {"a": 0.5, "b": 0.5}), task="multi_label"),
        "regression": dict(evaluate_regression(rng.normal(size=60), rng.normal(size=60)), task="regression")}
    for task, evaluation in evaluations.items():
        folder = tmp_path / task
        get_task(task).write_report(str(folder), evaluation, baseline=baseline, method="probe",
                                    warnings=["the evaluated file has only 12 texts"])
        page = _report(folder)
        assert "<td>this model (probe)</td>" in page and "<td>BASELINE &lt;here&gt;</td>" in page, task
        assert "<p>scored on the same texts</p>" in page and "Model: probe." in page, task
        assert WARNING_BOX + "the evaluated file has only 12 texts</p>" in page, task
        assert "fine-tuned model" not in page, task
    assert legends["baseline.png"] == ["this model (probe)", "BASELINE <here>"]


def test_evaluate_report_on_a_small_file_warns_and_labels_the_training_figure(trained_xlmr, tmp_path, capsys):
    data = _labelled(tmp_path / "six.jsonl", [("alpha beta delve", "GPT"), ("gamma lol delta", "Human")] * 3)
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data, "--report",
                 str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert "warning: the evaluated file has only 6 texts, so its scores mean little" in err
    page = _report(tmp_path / "rep")
    validation = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))["data"]["validation_texts"]
    assert WARNING_BOX + "the evaluated file has only 6 texts, so its scores mean little" in page
    assert f"TF-IDF baseline on the training run&#x27;s validation split ({validation} texts), not this file" in page
    assert "<td>this model (fine-tuned)</td>" in page


def test_evaluate_report_refits_the_baseline_on_a_large_enough_file(trained_xlmr, tmp_path, capsys):
    data = _labelled(tmp_path / "forty.jsonl", make_texts(40, seed=9))
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data, "--report",
                 str(tmp_path / "rep")]) == 0
    assert "scores mean little" not in capsys.readouterr().err
    page = _report(tmp_path / "rep")
    assert "<td>TF-IDF + logistic regression, 5-fold cross-validated on this file</td>" in page
    assert "not this file" not in page and WARNING_BOX not in page


def test_probe_reports_name_the_probe_and_small_validation_is_boxed(tiny_xlmr, tmp_path, capsys):
    data = write_json(tmp_path / "few.json", [messages_record(t, y) for t, y in make_texts(60, seed=4)])
    out = tmp_path / "probe"
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                 "--method", "probe", "--max_length", "32", "--precision", "fp32", "--pooling", "mean"]) == 0
    page = _report(out / "report")   # 6 validation texts
    assert WARNING_BOX + "validation has only 6 texts, so its scores mean little" in page
    assert "<td>this model (probe)</td>" in page and "fine-tuned model" not in page
    assert "<td>TF-IDF + logistic regression, same split</td>" in page
    assert "scored on the same 6 validation texts as the model" in page
    capsys.readouterr()
    assert main(["evaluate", "--model_path", str(out), "--data_path", data, "--report", str(tmp_path / "rep")]) == 0
    page = _report(tmp_path / "rep")
    assert "<td>this model (probe)</td>" in page and "cross-validated on this file" in page
    assert WARNING_BOX not in page   # 60 texts

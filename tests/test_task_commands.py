"""Multi-label and regression through train, predict (--text, --input), evaluate, calibrate and inspect."""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import write_json

from m3cls.cli import main


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_multilabel_training_saves_thresholds_temperature_and_problem_type(multilabel_run):
    from transformers import AutoModelForSequenceClassification

    meta = json.load(open(os.path.join(multilabel_run["model"], "m3cls.json")))
    names = ["buzz", "casual", "formal", "vague"]
    assert meta["task"] == "multi_label" and meta["labels"] == names
    assert set(meta["thresholds"]) == set(names) and all(0 < t < 1 for t in meta["thresholds"].values())
    assert meta["temperature"] > 0 and meta["calibration"]["shared"] is True
    metrics = meta["metrics"]
    assert metrics["micro_f1"] > 0.6 and {"macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"} <= set(metrics)
    assert set(metrics["per_label"]["casual"]) == {"precision", "recall", "f1", "support", "threshold"}
    assert metrics["per_label"]["casual"]["threshold"] == meta["thresholds"]["casual"]
    assert set(metrics["ece_per_label"]) == set(names) and metrics["label_cardinality"]["truth"] > 0.5
    assert meta["baseline"]["name"] == "tfidf_ovr_logreg" and "micro_f1" in meta["baseline"]
    assert any("eval_micro_f1" in e for e in meta["history"])
    assert meta["data"]["train_counts"]["casual"] > 0 and "cooccurrence" in meta["inspection"]["train"]
    assert {"index.html", "per_label_f1.png", "reliability.png"} <= set(os.listdir(
        os.path.join(multilabel_run["model"], "report")))
    model = AutoModelForSequenceClassification.from_pretrained(multilabel_run["model"])  # plain transformers
    assert model.config.problem_type == "multi_label_classification" and model.config.id2label[1] == "casual"


def test_regression_training_learns_and_reports_in_original_units(regression_run):
    from transformers import AutoModelForSequenceClassification

    meta = json.load(open(os.path.join(regression_run["model"], "m3cls.json")))
    assert meta["task"] == "regression" and meta["labels"] == ["value"] and meta["thresholds"] is None
    assert 3 < meta["target_mean"] < 7 and 2 < meta["target_std"] < 4  # scores from 0 to 10
    metrics = meta["metrics"]
    assert {"rmse", "mae", "r2", "pearson", "spearman"} <= set(metrics) and metrics["r2"] > 0.5
    assert meta["baseline"]["name"] == "tfidf_ridge" and "rmse" in meta["baseline"]
    assert any("eval_rmse" in e for e in meta["history"])
    assert {"scatter.png", "index.html"} <= set(os.listdir(os.path.join(regression_run["model"], "report")))
    config = AutoModelForSequenceClassification.from_pretrained(regression_run["model"]).config
    assert config.problem_type == "regression" and config.num_labels == 1


@pytest.mark.parametrize("run", ["multilabel_run", "regression_run"])
def test_predict_input_gives_what_training_saw_on_validation(request, run, tmp_path):
    info = request.getfixturevalue(run)
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", info["model"], "--input", info["val"], "--output", str(out),
                 "--precision", "fp32"]) == 0
    predicted, saved = _rows(out), _rows(os.path.join(info["model"], "validation_predictions.jsonl"))
    assert len(predicted) == len(saved) == 40
    if run == "regression_run":
        assert set(predicted[0]) == {"index", "value", "unknown_token_share"}
        np.testing.assert_allclose([r["value"] for r in predicted], [r["value"] for r in saved], atol=1e-4)
        return
    assert set(predicted[0]) == {"index", "labels", "probabilities", "unknown_token_share"}
    for p, s in zip(predicted, saved):
        assert p["labels"] == s["labels"] and p["probabilities"] == pytest.approx(s["probabilities"], abs=1e-4)


def _plain_values(model: str, texts: list[str]) -> list[float]:
    """Regression values computed without m3cls: plain transformers' output, scaled by the saved target mean
    and std."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    meta = json.load(open(os.path.join(model, "m3cls.json")))
    network = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32).eval()
    batch = AutoTokenizer.from_pretrained(model)(texts, truncation=True, max_length=meta["max_length"],
                                                 padding=True, return_tensors="pt")
    with torch.no_grad():
        out = network(**batch).logits[:, 0].double().numpy()
    return (out * meta["target_std"] + meta["target_mean"]).tolist()


def test_predict_text_prints_a_block_per_task(multilabel_run, regression_run, capsys):
    assert main(["predict", "--model_path", multilabel_run["model"], "--text", "lol yeah dunno kinda"]) == 0
    out = capsys.readouterr().out
    assert "Predicted labels: casual" in out and "threshold" in out and "  casual  0." in out
    assert main(["predict", "--model_path", multilabel_run["model"], "--text", "lol yeah", "--json",
                 "--threshold", "0.01"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["labels"] == [n for n, p in row["probabilities"].items() if p >= 0.01] and "label" not in row
    assert len(row["labels"]) >= 2  # more than the tuned thresholds let through
    high, low = "delve tapestry crucial", "the a of and to in"
    fp32 = ["--precision", "fp32"]  # the plain transformers reference below runs in fp32
    assert main(["predict", "--model_path", regression_run["model"], "--text", high, *fp32]) == 0
    value = float(capsys.readouterr().out.split("Predicted value: ")[1])
    assert main(["predict", "--model_path", regression_run["model"], "--text", low, *fp32]) == 0
    low_value = float(capsys.readouterr().out.split("Predicted value: ")[1])
    assert low_value < value - 3  # no GPT words: low score
    # in the target's own units: plain transformers' output times the saved std plus the saved mean
    assert [value, low_value] == pytest.approx(_plain_values(regression_run["model"], [high, low]), abs=2e-4)
    assert main(["predict", "--model_path", regression_run["model"], "--text", "x", "--threshold", "0.3"]) == 2
    assert "--threshold applies to multi-label models" in capsys.readouterr().err
    assert main(["predict", "--model_path", regression_run["model"], "--text", "x", "--temperature", "2"]) == 2
    assert "a regression model predicts a number" in capsys.readouterr().err


def test_evaluate_multilabel(multilabel_run, tmp_path, capsys):
    out, preds = tmp_path / "e.json", tmp_path / "p.jsonl"
    assert main(["evaluate", "--model_path", multilabel_run["model"], "--data_path", multilabel_run["val"],
                 "--output", str(out), "--predictions", str(preds), "--report", str(tmp_path / "rep"),
                 "--precision", "fp32"]) == 0
    printed = capsys.readouterr().out
    assert "40 labelled texts (multi-label)" in printed and "hamming_loss" in printed and "threshold" in printed
    result = json.loads(out.read_text())
    meta = json.load(open(os.path.join(multilabel_run["model"], "m3cls.json")))
    assert result["after"]["micro_f1"] == pytest.approx(meta["metrics"]["micro_f1"], abs=1e-6)  # same texts
    rows = _rows(preds)
    assert {"labels", "probabilities", "true_labels"} <= set(rows[0])
    # micro-F1 counted here from the written decisions and truths, not by the code that reported it
    tp = sum(len(set(r["labels"]) & set(r["true_labels"])) for r in rows)
    fp = sum(len(set(r["labels"]) - set(r["true_labels"])) for r in rows)
    fn = sum(len(set(r["true_labels"]) - set(r["labels"])) for r in rows)
    assert result["after"]["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # calibration keeps the decisions and changes only the scores of the probabilities
    assert meta["temperature"] != 1.0 and result["after"]["temperature"] == meta["temperature"]
    assert result["before"]["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert result["before"]["log_loss"] != pytest.approx(result["after"]["log_loss"])
    assert {"index.html", "reliability.png", "per_label_f1.png"} <= set(os.listdir(tmp_path / "rep"))
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")   # like with like: refit on these texts
    assert "<td>TF-IDF + one-vs-rest logistic regression, 5-fold cross-validated on this file</td>" in page
    assert "<td>this model (fine-tuned)</td>" in page and "scores mean little" not in page
    trained = open(os.path.join(multilabel_run["model"], "report", "index.html"), encoding="utf-8").read()
    assert "<td>TF-IDF + one-vs-rest logistic regression, same split</td>" in trained


def test_evaluate_regression(regression_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["evaluate", "--model_path", regression_run["model"], "--data_path", regression_run["val"],
                 "--output", str(out), "--predictions", str(tmp_path / "p.jsonl"), "--report",
                 str(tmp_path / "rep"), "--precision", "fp32"]) == 0
    assert "(regression)" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["after"]["rmse"] == pytest.approx(
        json.load(open(os.path.join(regression_run["model"], "m3cls.json")))["metrics"]["rmse"], abs=1e-4)
    assert len(result["points"]["truth"]) == 40 and "true_value" in _rows(tmp_path / "p.jsonl")[0]
    assert "scatter.png" in os.listdir(tmp_path / "rep")
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "<td>TF-IDF + ridge, 5-fold cross-validated on this file</td>" in page
    assert "<td>this model (fine-tuned)</td>" in page and "Model: fine-tuned." in page


def test_calibrate_multilabel_keeps_every_decision(multilabel_run, regression_run, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(multilabel_run["model"], model)
    before = tmp_path / "before.jsonl"
    assert main(["predict", "--model_path", str(model), "--input", multilabel_run["train"], "--output",
                 str(before)]) == 0
    assert main(["calibrate", "--model_path", str(model), "--data_path", multilabel_run["train"]]) == 0
    assert "shared by all labels" in capsys.readouterr().out
    old = json.load(open(os.path.join(multilabel_run["model"], "m3cls.json")))
    new = json.load(open(model / "m3cls.json"))
    assert new["temperature"] != old["temperature"] and new["thresholds"] != old["thresholds"]
    assert new["calibration"]["fitted_on"] == multilabel_run["train"]
    card = (model / "README.md").read_text(encoding="utf-8")  # the model card follows the new thresholds
    assert f"{new['thresholds']['casual']:.4f}" in card and f"{old['thresholds']['casual']:.4f}" not in card
    after = tmp_path / "after.jsonl"
    assert main(["predict", "--model_path", str(model), "--input", multilabel_run["train"], "--output",
                 str(after)]) == 0
    assert [r["labels"] for r in _rows(before)] == [r["labels"] for r in _rows(after)]
    assert main(["calibrate", "--model_path", regression_run["model"], "--data_path", regression_run["val"]]) == 2
    assert "no temperature to calibrate" in capsys.readouterr().err


def test_inspect_shows_label_sets_and_targets(multilabel_run, regression_run, capsys):
    assert main(["inspect", "--data_path", multilabel_run["train"], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["class_counts"]["casual"] > 0 and report["train"]["cooccurrence"]
    assert report["train"]["label_cardinality"] > 0.5
    assert main(["inspect", "--data_path", regression_run["train"], "--task", "regression"]) == 0
    assert "targets: mean" in capsys.readouterr().out


BAD_TRAIN = [
    ("mixed.json", [{"text": "a b", "label": ["x"]}, {"text": "c d", "label": "y"}], [],
     "record 2 has the single label 'y' while record 1 has a label list; pass --task multi_label"),
    ("list.json", [{"text": "a b", "label": "x"}, {"text": "c d", "label": ["x", "y"]}], ["--task", "single_label"],
     "record 2 has the label list ['x', 'y'], but this is a single-label run; pass --task multi_label"),
    ("word.json", [{"text": "a b", "label": 1.5}, {"text": "c d", "label": "high"}], ["--task", "regression"],
     "record 2 has the target 'high', which is not a number"),
    ("inf.json", [{"text": "a b", "label": 1.5}, {"text": "c d", "label": "inf"}], ["--task", "regression"],
     "record 2 has the target 'inf', which is not a finite number"),
]


@pytest.mark.parametrize("name,records,flags,message", BAD_TRAIN, ids=[b[0] for b in BAD_TRAIN])
def test_bad_labels_stop_training_with_one_line_and_nothing_written(tiny_bert, tmp_path, capsys, name, records,
                                                                  flags, message):
    data = write_json(tmp_path / name, records * 10)
    out = tmp_path / "out"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_validation_label_never_seen_in_training(tiny_bert, tmp_path, capsys):
    data = write_json(tmp_path / "t.json", [{"text": "a b", "label": ["x"]}, {"text": "c", "label": ["y"]}] * 5)
    val = write_json(tmp_path / "v.json", [{"text": "a", "label": ["x", "z"]}])
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--validation_path", val,
                 "--output_dir", str(tmp_path / "o")]) == 2
    assert "v.json: record 1 has label 'z', which never appears in" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

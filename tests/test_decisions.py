"""Operating points and abstention: chosen on labelled data, saved in the contract, applied everywhere."""

import json
import os
import shutil

import httpx
import numpy as np
import pytest
from conftest import make_texts

from m3cls.cli import main
from m3cls.errors import DataError
from m3cls.metrics.decisions import DecisionRule, choose_threshold, rates


@pytest.mark.parametrize("metric,target", [("fpr", 0.05), ("fpr", 0.01), ("precision", 0.9), ("recall", 0.9)])
def test_threshold_meets_the_target_on_its_data(metric, target):
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.4).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    choice = choose_threshold(scores, y, metric, target)
    achieved = rates(scores, y, choice["threshold"])[metric]
    assert achieved == choice["achieved"]
    assert achieved <= target if metric == "fpr" else achieved >= target
    low, high = choice["interval"]
    assert low <= achieved <= high
    # the best threshold the target allows: the next distinct score down (up, for recall) misses the target
    t = choice["threshold"]
    step = scores[scores > t].min() if metric == "recall" else scores[scores < t].max()
    beyond = rates(scores, y, step)[metric]
    assert beyond > target if metric == "fpr" else beyond < target


def test_too_few_negatives_names_how_many_are_needed():
    y = np.array([1] * 100 + [0] * 100)
    scores = np.linspace(0, 1, 200)
    with pytest.raises(DataError, match="100 negative texts are too few .* needs at least 368"):
        choose_threshold(scores, y, "fpr", 0.01, "cal.json")
    with pytest.raises(DataError, match="has 200 positive and 0 negative texts"):
        choose_threshold(scores, np.ones(200, dtype=int), "fpr", 0.05, "cal.json")


def test_rule_decides_and_abstains():
    names = ["GPT", "Human", "Other"]
    logits = np.log(np.array([[0.30, 0.50, 0.20], [0.10, 0.45, 0.45], [0.05, 0.90, 0.05]]))
    rule = DecisionRule(positive_label="GPT", threshold=0.25)
    assert rule.decide(logits, names) == ["GPT", "Human", "Human"]
    assert DecisionRule(positive_label="GPT", threshold=0.25, abstain_below=0.6).decide(logits, names) == \
        ["GPT", "uncertain", "Human"]
    assert DecisionRule(abstain_below=0.5).decide(logits, names) == ["Human", "uncertain", "Human"]


def _noisy(tmp_path, n=240, seed=11, name="cal.jsonl"):
    rows = []
    for i, (text, label) in enumerate(make_texts(n, seed=seed)):
        if i % 5 == 0:
            label = "GPT" if label == "Human" else "Human"
        rows.append(json.dumps({"text": text, "label": label}))
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def calibrated(trained_xlmr, tmp_path_factory):
    folder = tmp_path_factory.mktemp("decision")
    model = str(folder / "model")
    shutil.copytree(trained_xlmr, model)
    data = _noisy(folder)
    assert main(["calibrate", "--model_path", model, "--data_path", data, "--target_fpr", "0.05",
                 "--positive_label", "GPT", "--report", str(folder / "report"), "--precision", "fp32"]) == 0
    return model, data, folder


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_calibrate_saves_a_threshold_whose_fpr_holds_on_its_data(calibrated, tmp_path):
    model, data, folder = calibrated
    decision = json.load(open(os.path.join(model, "m3cls.json")))["decision"]
    assert decision["positive_label"] == "GPT" and decision["target"]["metric"] == "fpr"
    preds = tmp_path / "p.jsonl"
    assert main(["evaluate", "--model_path", model, "--data_path", data, "--predictions", str(preds),
                 "--precision", "fp32"]) == 0
    rows = _rows(preds)
    negatives = [r for r in rows if r["true_label"] != "GPT"]
    flagged = [r for r in negatives if r["decision"] == "GPT"]
    assert len(flagged) / len(negatives) <= 0.05
    assert len(flagged) / len(negatives) == pytest.approx(decision["target"]["achieved"])
    assert all((r["decision"] == "GPT") == (r["probabilities"]["GPT"] >= decision["threshold"]) for r in rows)
    assert decision["target"]["interval"][0] <= decision["target"]["achieved"] <= decision["target"]["interval"][1]
    assert {"roc_pr.png", "risk_coverage.png", "index.html"} <= set(os.listdir(folder / "report"))
    assert "Clopper-Pearson" in (folder / "report" / "index.html").read_text()


def test_predict_and_onnx_apply_the_saved_rule(calibrated, tmp_path):
    model, data, _ = calibrated
    threshold = json.load(open(os.path.join(model, "m3cls.json")))["decision"]["threshold"]
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", model, "--input", data, "--output", str(out), "--precision", "fp32"]) == 0
    torch_rows = _rows(out)
    assert all((r["decision"] == "GPT") == (r["probabilities"]["GPT"] >= threshold) for r in torch_rows)
    assert {r["decision"] for r in torch_rows} == {"GPT", "Human"}
    assert any(r["decision"] != r["label"] for r in torch_rows)  # the rule, not the argmax, decided
    onnx_dir = str(tmp_path / "onnx")
    assert main(["export", "--model_path", model, "--output", onnx_dir]) == 0
    assert main(["predict", "--model_path", onnx_dir, "--backend", "onnx", "--input", data, "--output",
                 str(tmp_path / "o.jsonl")]) == 0
    onnx_rows = _rows(tmp_path / "o.jsonl")
    near = [abs(r["probabilities"]["GPT"] - threshold) < 1e-4 for r in torch_rows]
    assert all(a["decision"] == b["decision"] for a, b, close in zip(torch_rows, onnx_rows, near) if not close)


def test_serve_applies_the_saved_rule(calibrated):
    from test_serving import start

    model, _, _ = calibrated
    threshold = json.load(open(os.path.join(model, "m3cls.json")))["decision"]["threshold"]
    texts = [t for t, _ in make_texts(30, seed=5)]
    with start(model) as live:
        predictions = httpx.post(f"{live.url}/predict", json={"texts": texts}).json()["predictions"]
        hot = httpx.post(f"{live.url}/predict", json={"texts": texts, "temperature": 50}).json()["predictions"]
    assert all((p["decision"] == "GPT") == (p["probabilities"]["GPT"] >= threshold) for p in predictions)
    # a display temperature changes the probabilities shown, never the decision
    assert [p["decision"] for p in hot] == [p["decision"] for p in predictions]


def test_abstention_at_predict_and_calibrate_time(calibrated, tmp_path, capsys):
    model, data, _ = calibrated
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", model, "--input", data, "--output", str(out), "--abstain_below",
                 "0.9", "--precision", "fp32"]) == 0
    threshold = json.load(open(os.path.join(model, "m3cls.json")))["decision"]["threshold"]
    rows = _rows(out)
    # GPT when its probability reaches the saved threshold; else Human if Human clears 0.9; else uncertain
    expected = ["GPT" if r["probabilities"]["GPT"] >= threshold else
                "Human" if r["probabilities"]["Human"] >= 0.9 else "uncertain" for r in rows]
    assert [r["decision"] for r in rows] == expected
    assert "uncertain" in expected and "GPT" in expected   # both branches of the rule are exercised
    copy = str(tmp_path / "m")
    shutil.copytree(model, copy)
    capsys.readouterr()
    assert main(["calibrate", "--model_path", copy, "--data_path", data, "--abstain_below", "0.9"]) == 0
    saved = json.load(open(os.path.join(copy, "m3cls.json")))["decision"]
    assert saved["abstain_below"] == 0.9 and saved["threshold"] is not None  # the operating point is kept
    assert main(["evaluate", "--model_path", copy, "--data_path", data, "--output", str(tmp_path / "e.json")]) == 0
    printed = capsys.readouterr().out
    result = json.load(open(tmp_path / "e.json"))
    assert "abstain below 0.9:" in printed and "risk-coverage" in printed
    assert 0 < result["decision"]["coverage"] < 1
    points = result["risk_coverage"]["points"]
    assert points[-1]["coverage"] == 1.0 and points[-1]["accuracy"] == pytest.approx(result["after"]["accuracy"])


@pytest.mark.parametrize("flags,message", [
    (["--target_fpr", "1.5", "--positive_label", "GPT"], "--target_fpr 1.5 must lie strictly between 0 and 1"),
    (["--target_fpr", "0", "--positive_label", "GPT"], "--target_fpr 0.0 must lie strictly between 0 and 1"),
    (["--target_fpr", "0.05", "--positive_label", "Bard"], "--positive_label 'Bard' is not a label of"),
    (["--target_fpr", "0.05"], "--target_fpr needs --positive_label"),
    (["--target_fpr", "0.001", "--positive_label", "GPT"], "too few to show a fpr at or under 0.001: even a "
                                                             "perfect count needs at least 3688"),
    (["--target_recall", "0.999", "--positive_label", "GPT"], "positive texts are too few"),
])
def test_bad_targets_fail_in_one_line_and_write_nothing(calibrated, tmp_path, capsys, flags, message):
    model, data, _ = calibrated
    before = open(os.path.join(model, "m3cls.json")).read()
    code = main(["calibrate", "--model_path", model, "--data_path", data, *flags, "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert open(os.path.join(model, "m3cls.json")).read() == before and not (tmp_path / "r").exists()


def test_no_negatives_is_refused(calibrated, tmp_path, capsys):
    model, _, _ = calibrated
    only_gpt = tmp_path / "gpt.jsonl"
    only_gpt.write_text("".join(json.dumps({"text": t, "label": "GPT"}) + "\n" for t, _ in make_texts(80, seed=3)))
    assert main(["calibrate", "--model_path", model, "--data_path", str(only_gpt), "--target_fpr", "0.05",
                 "--positive_label", "GPT"]) == 2
    assert "has 80 positive and 0 negative texts" in capsys.readouterr().err

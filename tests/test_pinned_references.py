"""Expected values from outside m3cls, one set per task.

The other tests compare serve with ``Classifier.predict`` and ``evaluate`` with the report functions it calls,
which checks plumbing only. Here the logits come from plain transformers (``AutoModelForSequenceClassification``
on the saved folder, turned into probabilities or values by the formulas the model contract documents) and the
metrics from scikit-learn and scipy, then m3cls predict, serve and evaluate must agree with them.
"""

import json
import os
import shutil

import httpx
import numpy as np
import pytest
from conftest import make_texts, write_json
from scipy.stats import pearsonr, spearmanr
from sklearn import metrics as skm

from m3cls.cli import main

RUNS = ["single_label", "multi_label", "regression"]


@pytest.fixture(scope="module")
def single_label_run(trained_xlmr, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    model = str(folder / "model")
    shutil.copytree(trained_xlmr, model)
    contract = json.load(open(os.path.join(model, "m3cls.json")))
    contract["temperature"] = 2.0   # the session's model has T = 1, where a forgotten temperature does not show
    json.dump(contract, open(os.path.join(model, "m3cls.json"), "w"))
    pairs = [(t, y) for t, y in make_texts(80, seed=71) if len(t.split()) <= 20][:40]  # within max_length
    data = write_json(folder / "val.json", [{"text": t, "label": y} for t, y in pairs])
    return {"model": model, "val": data, "val_texts": [t for t, _ in pairs]}


@pytest.fixture
def run(request):
    name = {"single_label": "single_label_run", "multi_label": "multilabel_run", "regression": "regression_run"}
    return request.getfixturevalue(name[request.param])


def _reference(model: str, texts: list[str]) -> tuple[np.ndarray, dict]:
    """Logits from plain transformers on the saved folder, and the folder's m3cls.json."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    contract = json.load(open(os.path.join(model, "m3cls.json")))
    tokenizer = AutoTokenizer.from_pretrained(model)
    network = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32).eval()
    batch = tokenizer(texts, truncation=True, max_length=contract["max_length"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = network(**batch).logits.numpy().astype(np.float64)
    return logits, contract


def _outputs(logits: np.ndarray, contract: dict) -> dict:
    """What a prediction must say, by the contract's formulas: softmax or sigmoid at the saved temperature, the
    multi-label thresholds, the regression target's scale."""
    t, names = contract["temperature"], contract["labels"]
    if contract["task"] == "regression":
        return {"values": logits[:, 0] * (contract["target_std"] or 1.0) + (contract["target_mean"] or 0.0)}
    if contract["task"] == "multi_label":
        probs = 1 / (1 + np.exp(-logits / t))
        cut = np.array([contract["thresholds"][n] for n in names]) if contract["thresholds"] else 0.5
        return {"probabilities": probs, "chosen": probs >= cut}
    z = np.exp(logits / t - (logits / t).max(axis=1, keepdims=True))
    return {"probabilities": z / z.sum(axis=1, keepdims=True)}


def _check_rows(rows: list[dict], expected: dict, names: list[str]) -> None:
    if "values" in expected:
        assert [r["value"] for r in rows] == pytest.approx(expected["values"].tolist(), abs=1e-4)
        return
    got = np.array([[r["probabilities"][n] for n in names] for r in rows])
    np.testing.assert_allclose(got, expected["probabilities"], atol=1e-5)
    if "chosen" in expected:
        assert [sorted(r["labels"]) for r in rows] == [sorted(n for n, c in zip(names, row) if c)
                                                       for row in expected["chosen"]]
    else:
        assert [r["label"] for r in rows] == [names[i] for i in expected["probabilities"].argmax(axis=1)]


@pytest.mark.parametrize("run", RUNS, indirect=True)
def test_predict_and_serve_match_plain_transformers(run, tmp_path):
    from test_serving import start

    logits, contract = _reference(run["model"], run["val_texts"])
    expected, names = _outputs(logits, contract), contract["labels"]
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", run["model"], "--input", run["val"], "--output", str(out),
                 "--precision", "fp32"]) == 0
    _check_rows([json.loads(line) for line in open(out, encoding="utf-8")], expected, names)
    with start(run["model"]) as live:
        reply = httpx.post(f"{live.url}/predict", json={"texts": run["val_texts"]}, timeout=60)
    _check_rows(reply.json()["predictions"], expected, names)


def _sklearn_metrics(task: str, truth: list, expected: dict, names: list[str]) -> dict:
    """The metrics m3cls evaluate reports, computed by scikit-learn and scipy."""
    if task == "regression":
        y, p = np.asarray(truth, dtype=np.float64), expected["values"]
        return {"rmse": float(np.sqrt(skm.mean_squared_error(y, p))), "mae": skm.mean_absolute_error(y, p),
                "r2": skm.r2_score(y, p), "pearson": pearsonr(y, p)[0], "spearman": spearmanr(y, p)[0]}
    if task == "multi_label":
        y = np.array([[n in labels for n in names] for labels in truth])
        p = expected["chosen"]
        present = np.flatnonzero(y.sum(axis=0))
        return {"micro_f1": skm.f1_score(y, p, average="micro", zero_division=0),
                "macro_f1": skm.f1_score(y, p, average="macro", labels=present, zero_division=0),
                "samples_f1": skm.f1_score(y, p, average="samples", zero_division=1.0),
                "subset_accuracy": skm.accuracy_score(y, p), "hamming_loss": skm.hamming_loss(y, p)}
    y = np.array([names.index(label) for label in truth])
    probs = expected["probabilities"]
    p = probs.argmax(axis=1)
    return {"accuracy": skm.accuracy_score(y, p),
            "macro_f1": skm.f1_score(y, p, average="macro", labels=np.unique(y), zero_division=0),
            "log_loss": skm.log_loss(y, probs, labels=list(range(len(names)))),
            "confusion_matrix": skm.confusion_matrix(y, p, labels=list(range(len(names)))).tolist()}


@pytest.mark.parametrize("run", RUNS, indirect=True)
def test_evaluate_matches_scikit_learn(run, tmp_path):
    logits, contract = _reference(run["model"], run["val_texts"])
    truth = [r["label"] for r in json.load(open(run["val"]))]
    reference = _sklearn_metrics(contract["task"], truth, _outputs(logits, contract), contract["labels"])
    out = tmp_path / "e.json"
    assert main(["evaluate", "--model_path", run["model"], "--data_path", run["val"], "--output", str(out),
                 "--precision", "fp32"]) == 0
    after = json.load(open(out))["after"]
    if "confusion_matrix" in reference:
        assert after["confusion_matrix"] == reference.pop("confusion_matrix")
    assert {key: after[key] for key in reference} == pytest.approx(reference, abs=1e-5)

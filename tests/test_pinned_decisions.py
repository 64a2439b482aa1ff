"""A saved decision rule decides at its own temperature (2.5 here), in predict, evaluate and serve.

Every other rule test uses a model at T = 1.0, where a rule that forgets its temperature decides the same. Here
the threshold is chosen so that T = 1 and T = 2.5 disagree on some texts: only the rule's temperature is right.
"""

import json
import os
import shutil

import httpx
import numpy as np
import pytest
from conftest import make_texts

from m3cls.cli import main

T = 2.5


def _gpt_probability(logits: np.ndarray, names: list, temperature: float) -> np.ndarray:
    """The positive label's softmax probability, computed here from the raw logits."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p[:, names.index("GPT")]


def _threshold_where_temperatures_disagree(at_rule: np.ndarray, at_one: np.ndarray) -> float:
    """A threshold that some texts clear at T = 2.5, and that T = 1 decides differently for at least 3 others,
    as far as possible from every probability (the tiny model's probabilities lie close to 0.5), so float noise
    between batch shapes cannot move a decision."""
    values = np.unique(np.r_[at_rule, at_one])
    best, gap = None, 0.0
    for threshold in (values[1:] + values[:-1]) / 2:
        disagree = ((at_rule >= threshold) != (at_one >= threshold)).sum()
        margin = np.abs(values - threshold).min()
        if disagree >= 3 and 0 < (at_rule >= threshold).sum() < len(at_rule) and margin > gap:
            best, gap = float(threshold), margin
    assert best is not None and gap > 1e-6, "no threshold separates T = 1 from T = 2.5 on these texts"
    return best


@pytest.fixture(scope="module")
def hot_rule(trained_xlmr, tmp_path_factory):
    """A copy of the trained model whose contract holds temperature 2.5 and a rule chosen at 2.5, the texts
    (with labels) and the decisions the rule must give, computed here from the model's raw logits."""
    from m3cls import Classifier

    folder = tmp_path_factory.mktemp("hot-rule")
    model = str(folder / "model")
    shutil.copytree(trained_xlmr, model)
    pairs = make_texts(60, seed=23)   # serve takes at most 64 texts a request
    texts = [t for t, _ in pairs]
    clf = Classifier.from_pretrained(model, precision="fp32")
    names = list(clf.labels.names)
    logits = clf.logits(texts)
    at_rule, at_one = _gpt_probability(logits, names, T), _gpt_probability(logits, names, 1.0)
    threshold = _threshold_where_temperatures_disagree(at_rule, at_one)
    path = os.path.join(model, "m3cls.json")
    contract = json.load(open(path))
    contract["temperature"] = T
    contract["decision"] = {"temperature": T, "positive_label": "GPT", "threshold": threshold}
    json.dump(contract, open(path, "w"))
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in pairs))
    expected = ["GPT" if p >= threshold else "Human" for p in at_rule]
    at_one_decisions = ["GPT" if p >= threshold else "Human" for p in at_one]
    assert expected != at_one_decisions   # the test can tell the two temperatures apart
    return {"model": model, "data": str(data), "texts": texts, "labels": [y for _, y in pairs],
            "expected": expected}


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_predict_decides_at_the_rules_temperature(hot_rule, tmp_path):
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", hot_rule["model"], "--input", hot_rule["data"], "--output", str(out),
                 "--precision", "fp32"]) == 0
    assert [r["decision"] for r in _rows(out)] == hot_rule["expected"]
    # a display temperature of 1 changes the probabilities shown, not the decision taken at 2.5
    assert main(["predict", "--model_path", hot_rule["model"], "--input", hot_rule["data"], "--output", str(out),
                 "--precision", "fp32", "--temperature", "1"]) == 0
    assert [r["decision"] for r in _rows(out)] == hot_rule["expected"]


def test_evaluate_decides_and_counts_at_the_rules_temperature(hot_rule, tmp_path):
    preds, result = tmp_path / "p.jsonl", tmp_path / "e.json"
    assert main(["evaluate", "--model_path", hot_rule["model"], "--data_path", hot_rule["data"], "--predictions",
                 str(preds), "--output", str(result), "--precision", "fp32"]) == 0
    assert [r["decision"] for r in _rows(preds)] == hot_rule["expected"]
    point = json.load(open(result))["decision"]["operating_point"]
    flagged = [y for d, y in zip(hot_rule["expected"], hot_rule["labels"]) if d == "GPT"]
    assert (point["tp"], point["fp"]) == (flagged.count("GPT"), flagged.count("Human"))


def test_serve_decides_at_the_rules_temperature(hot_rule):
    from test_serving import start

    with start(hot_rule["model"]) as live:
        body = {"texts": hot_rule["texts"]}
        shown = httpx.post(f"{live.url}/predict", json=body, timeout=60).json()["predictions"]
        cold = httpx.post(f"{live.url}/predict", json={**body, "temperature": 1.0}, timeout=60).json()["predictions"]
    assert [p["decision"] for p in shown] == hot_rule["expected"]
    assert [p["decision"] for p in cold] == hot_rule["expected"]

"""evaluate --by (issue 24): slice figures equal those computed by hand from the per-text predictions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_texts
from sklearn.metrics import f1_score, roc_auc_score

from m3cls.cli import main

SOURCES = ("forum", "news", "essay", "tiny")


def _sliced_file(tmp_path, n=90):
    """Labelled texts with a ``source`` column (one value with only 6 records) and 20% flipped labels."""
    rows = []
    for i, (text, label) in enumerate(make_texts(n, seed=23)):
        if i % 5 == 0:
            label = "GPT" if label == "Human" else "Human"
        source = SOURCES[3] if i < 6 else SOURCES[i % 3]
        rows.append(json.dumps({"text": text, "label": label, "source": source}))
    path = tmp_path / "sliced.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _by_hand(rows, sources, value):
    """The slice's figures from the predictions file alone (independent of m3cls' code)."""
    mask = np.array([s == value for s in sources])
    truth = np.array([r["true_label"] for r in rows])
    guess = np.array([r["label"] for r in rows])
    score = np.array([r["probabilities"]["GPT"] for r in rows])
    t, g = truth[mask], guess[mask]
    out = {"n": int(mask.sum()), "accuracy": float((t == g).mean()),
           "recall": {c: float((g[t == c] == c).mean()) for c in sorted(set(t))}}
    if len(set(t)) == 2:
        out["macro_f1"] = f1_score(t, g, average="macro")
    negatives = score[truth == "Human"]
    positives = score[mask & (truth == "GPT")]
    out["detection_rate"] = float((g[t == "GPT"] == "GPT").mean())
    out["fpr"] = float((g[t == "Human"] == "GPT").mean())
    out["auroc"] = roc_auc_score([1] * len(positives) + [0] * len(negatives), np.r_[positives, negatives])
    for target in (0.01, 0.05):  # flagged when at most floor(target * negatives) negatives score at or above it
        allowed = int(np.floor(target * len(negatives) + 1e-9))
        out[str(target)] = float(np.mean([(negatives >= s).sum() <= allowed for s in positives]))
    return out


def test_slice_figures_equal_those_from_the_predictions(trained_xlmr, tmp_path, capsys):
    data = _sliced_file(tmp_path)
    out, predictions = tmp_path / "eval.json", tmp_path / "pred.jsonl"
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data, "--by", "source,length",
                 "--positive_label", "GPT", "--output", str(out), "--predictions", str(predictions),
                 "--report", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert "by source" in printed and "tpr@1%" in printed and "(few records)" in printed
    result = json.loads(out.read_text())
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    sources = [json.loads(line)["source"] for line in open(data)]
    slices = result["slices"]["source"]
    assert sorted(slices) == sorted(SOURCES)
    for value in SOURCES:
        got, want = slices[value], _by_hand(rows, sources, value)
        assert got["n"] == want["n"] and got["few"] == (want["n"] < 20)
        assert got["accuracy"] == pytest.approx(want["accuracy"])
        assert got["recall"] == pytest.approx(want["recall"])
        assert got.get("macro_f1") == pytest.approx(want.get("macro_f1"))
        assert got["detection_rate"]["rate"] == pytest.approx(want["detection_rate"])
        assert got["fpr"]["rate"] == pytest.approx(want["fpr"])
        assert got["auroc"] == pytest.approx(want["auroc"], abs=1e-6)
        for target in ("0.01", "0.05"):
            assert got["tpr_at_fpr"][target]["rate"] == pytest.approx(want[target])
        low, high = got["fpr"]["interval"]
        assert low <= got["fpr"]["rate"] <= high
    lengths = result["slices"]["length"]
    assert len(lengths) >= 2 and sum(s["n"] for s in lengths.values()) == len(rows)
    assert len(result["slice_settings"]["length_edges"]) == 3
    page = open(tmp_path / "rep" / "index.html", encoding="utf-8").read()
    assert "Slices" in page and os.path.isfile(tmp_path / "rep" / "slices_source.png")


def test_positive_slice_is_scored_against_all_negatives():
    """A slice with positives only (one generator) still has an AUROC and TPR, against the file's negatives."""
    from m3cls.evaluation.slices import slice_scores

    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.6, 0.4]])
    y = np.array([0, 0, 1, 1, 1])
    result = slice_scores(probs, y, probs.argmax(1), ("Human", "GPT"),
                          {"gen": ["human", "human", "g1", "g1", "g2"]}, positive="GPT")
    g2 = result["slices"]["gen"]["g2"]
    assert g2["auroc"] == 1.0 and g2["fpr"]["rate"] is None and g2["detection_rate"]["rate"] == 0.0
    assert "macro_f1" not in g2 and result["slices"]["gen"]["human"]["auroc"] is None


def test_bad_slice_columns_are_one_line(trained_xlmr, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    rows = [{"text": t, "label": y, "source": "a", "id": str(i)} for i, (t, y) in enumerate(make_texts(1003))]
    del rows[4]["source"]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(data), "--by", "source"]) == 2
    err = capsys.readouterr().err.strip()
    assert "line 5" in err and "'source'" in err and len(err.splitlines()) == 1
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(data), "--by", "id"]) == 2
    err = capsys.readouterr().err.strip()
    assert "1003 distinct values" in err and "bucket" in err


def _columnar_copies(tmp_path, jsonl):
    """The rows of ``jsonl`` as a Parquet file and as a datasets save_to_disk folder (same order)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in open(jsonl)]
    columns = {key: [r[key] for r in rows] for key in ("text", "label", "source")}
    parquet = str(tmp_path / "sliced.parquet")
    pq.write_table(pa.table(columns), parquet, row_group_size=16)  # several row groups
    folder = str(tmp_path / "saved")
    datasets.Dataset.from_dict(columns).save_to_disk(folder)
    return parquet, folder


def test_by_reads_parquet_and_saved_datasets_like_jsonl(trained_xlmr, tmp_path):
    """--by reads the slice column through the reader of the texts, so every source gives the same slices."""
    data = _sliced_file(tmp_path)
    results = {}
    for name, path in zip(("jsonl", "parquet", "saved"), (data, *_columnar_copies(tmp_path, data))):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", path, "--by", "source",
                     "--positive_label", "GPT", "--output", str(out)]) == 0
        results[name] = json.loads(out.read_text())["slices"]["source"]
    assert sorted(results["jsonl"]) == sorted(SOURCES)
    assert results["parquet"] == results["jsonl"] and results["saved"] == results["jsonl"]


def test_cv_by_reads_a_parquet_column(tiny_xlmr, tmp_path):
    data = _sliced_file(tmp_path)
    parquet, _ = _columnar_copies(tmp_path, data)
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", parquet, "--output_dir", str(out),
                 "--method", "probe", "--max_length", "32", "--precision", "fp32", "--folds", "3", "--by", "source",
                 "--no_report"]) == 0
    slices = json.loads((out / "cv.json").read_text())["slices"]["source"]
    sources = [json.loads(line)["source"] for line in open(data)]
    assert {value: s["n"] for value, s in slices.items()} == {v: sources.count(v) for v in SOURCES}


def test_by_on_parquet_names_the_first_row_without_the_column(trained_xlmr, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pairs = make_texts(30, seed=5)
    sources = ["a", "b", "c", "d", None, "f"] * 5
    with_gap, without = str(tmp_path / "gap.parquet"), str(tmp_path / "none.parquet")
    pq.write_table(pa.table({"text": [t for t, _ in pairs], "label": [y for _, y in pairs], "source": sources}),
                   with_gap)
    pq.write_table(pa.table({"text": [t for t, _ in pairs], "label": [y for _, y in pairs]}), without)
    for path, row in ((with_gap, "row 5"), (without, "row 1")):
        assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", path, "--by", "source"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{path}: {row} " in err and "'source'" in err
        assert "drop source from --by" in err

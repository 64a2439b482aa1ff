"""Cross-validation (probe and fine-tuning, with and without groups), --group_column, and the label audit."""

import json
import os
import random

import numpy as np
import pytest
from conftest import TOPICS, TRAIN_FLAGS, make_texts, write_json

from m3cls.cli import main

PROBE = ["--method", "probe", "--max_length", "48", "--precision", "fp32", "--pooling", "mean"]


def _grouped_file(tmp_path, n_groups=12, per_group=5, seed=51):
    """Records in groups (a source and its rewrites): every record of a group has the group's label."""
    rng = random.Random(seed)
    rows = []
    for g, (text, label) in enumerate(make_texts(n_groups, seed=seed)):
        for k in range(per_group):
            words = text.split()
            rng.shuffle(words)
            rows.append({"text": " ".join(words) + f" v{k}", "label": label, "source": f"doc{g}"})
    return write_json(tmp_path / "grouped.json", rows), rows


def _oof(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "oof_predictions.jsonl"))]


def test_probe_cv_scores_every_text_once(tiny_xlmr, messages_file, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", str(out),
                 *PROBE, "--folds", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = _oof(out)
    assert [r["index"] for r in rows] == list(range(120)) and sorted({r["fold"] for r in rows}) == [1, 2, 3, 4]
    summary = json.load(open(out / "cv.json"))
    assert [f["records"] for f in summary["folds"]] == [30, 30, 30, 30]
    scores = [f["macro_f1"] for f in summary["folds"]]
    assert summary["macro_f1_mean"] == pytest.approx(np.mean(scores)) and summary["macro_f1_mean"] >= 0.85
    assert summary["macro_f1_std"] == pytest.approx(np.std(scores, ddof=1))
    assert printed["folds"] == 4 and printed["macro_f1_mean"] == round(summary["macro_f1_mean"], 4)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-6 for r in rows)
    assert "Cross-validation" in (out / "report" / "index.html").read_text()


def test_grouped_cv_keeps_each_group_in_one_fold(tiny_xlmr, tmp_path):
    data, rows = _grouped_file(tmp_path)
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out), *PROBE,
                 "--folds", "3", "--group_column", "source", "--no_report"]) == 0
    folds_of_group = {}
    for row, oof in zip(rows, _oof(out)):
        folds_of_group.setdefault(row["source"], set()).add(oof["fold"])
    assert all(len(f) == 1 for f in folds_of_group.values())
    assert json.load(open(out / "cv.json"))["split"] == "stratified, grouped by 'source'"


def test_finetune_cv_trains_one_model_per_fold(tiny_bert, tmp_path):
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(24, seed=52)])
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *TRAIN_FLAGS, "--num_train_epochs", "1", "--folds", "2", "--no_report"]) == 0
    summary = json.load(open(out / "cv.json"))
    assert summary["method"] == "finetune" and len(summary["folds"]) == 2
    assert len(_oof(out)) == 24 and not any(n.startswith("fold-") for n in os.listdir(out))


@pytest.mark.parametrize("extra,message", [
    (["--folds", "1"], "--folds 1: cross-validation needs at least 2 folds"),
    (["--folds", "31"], "--folds 31: class 'GPT' in"),
    (["--folds", "13", "--group_column", "source"], "has only 12 group(s) in --group_column"),
    (["--group_column", "author"], "has no usable 'author' field"),
])
def test_bad_folds_exit_2_with_one_line(tiny_xlmr, tmp_path, capsys, extra, message):
    data, _ = _grouped_file(tmp_path)
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out), *PROBE,
                 *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_train_and_inspect_keep_groups_on_one_side(tiny_xlmr, tmp_path, capsys):
    data, rows = _grouped_file(tmp_path)
    out = tmp_path / "m"
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out), *PROBE,
                 "--group_column", "source", "--validation_split", "0.25", "--no_report", "--no_baseline"]) == 0
    meta = json.load(open(out / "m3cls.json"))
    assert meta["inspection"]["shared_groups"] == 0 and "by group" in meta["data"]["validation_path"]
    validation = [json.loads(line)["index"] for line in open(out / "validation_predictions.jsonl")]
    assert 0 < len(validation) < len(rows)
    capsys.readouterr()
    assert main(["inspect", "--data_path", data, "--validation_split", "0.25"]) == 0
    random_split = capsys.readouterr().out
    assert "WARNING: NEAR-DUPLICATES:" in random_split and "give --group_column" in random_split
    assert main(["inspect", "--data_path", data, "--validation_split", "0.25", "--group_column", "source"]) == 0
    assert "NEAR-DUPLICATES" not in capsys.readouterr().out


def test_audit_ranks_flipped_labels_first(tiny_xlmr, tmp_path, capsys):
    # separable: every text carries at least 2 of its class's words (a 4-word text may carry none)
    pairs = [(t, y) for t, y in make_texts(400, seed=53) if sum(w in TOPICS[y] for w in t.split()) >= 2][:200]
    flipped = set(random.Random(0).sample(range(200), 16))  # 8%
    rows = [{"text": t, "label": ("Human" if y == "GPT" else "GPT") if i in flipped else y}
            for i, (t, y) in enumerate(pairs)]
    data = write_json(tmp_path / "noisy.json", rows)
    out = tmp_path / "audit"
    assert main(["audit", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "64", "--precision", "fp32", "--pooling", "mean", "--folds", "5",
                 "--near_duplicate_cosine", "1.0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    suspects = [json.loads(line) for line in open(out / "suspects.jsonl")]
    assert printed["suspects"] == len(suspects) and {"index", "given_label", "suggested_label", "score"} <= set(
        suspects[0])
    assert [s["score"] for s in suspects] == sorted((s["score"] for s in suspects), reverse=True)
    # each score is 1 - the out-of-fold probability of the label the record carries (not the suggested one)
    oof = {r["index"]: r for r in map(json.loads, open(out / "oof_predictions.jsonl"))}
    for s in suspects:
        assert s["given_label"] == rows[s["index"]]["label"] == oof[s["index"]]["label"]
        assert s["score"] == pytest.approx(1 - oof[s["index"]]["probabilities"][s["given_label"]], abs=1e-6)
    top = {s["index"] for s in suspects[:len(flipped)]}  # as many places as flipped records
    assert len(top & flipped) >= 0.8 * len(flipped)
    for s in suspects:
        if s["index"] in flipped:
            assert s["suggested_label"] == pairs[s["index"]][1]  # the label before the flip
    assert "Label audit" in (out / "report" / "index.html").read_text()


def test_audit_flags_identical_texts_with_different_labels(tiny_xlmr, tmp_path, capsys):
    rows = [{"text": t, "label": y} for t, y in make_texts(40, seed=54)]
    rows.append({"text": rows[0]["text"].upper(), "label": "Human" if rows[0]["label"] == "GPT" else "GPT"})
    data = write_json(tmp_path / "d.json", rows)
    out = tmp_path / "audit"
    assert main(["audit", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out), *PROBE,
                 "--folds", "3", "--no_report", "--near_duplicate_cosine", "1.0"]) == 0
    suspects = {s["index"]: s for s in map(json.loads, open(out / "suspects.jsonl"))}
    assert "conflicting_duplicate" in suspects[0]["reasons"] and suspects[0]["related"] == [40]
    assert "conflicting_duplicate" in suspects[40]["reasons"]
    assert json.load(open(out / "audit.json"))["counts"]["conflicting_duplicate_groups"] == 1


def test_near_duplicates_by_embedding_cosine():
    from m3cls.evaluation.audit import find_suspects, near_duplicate_pairs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16))
    x[7] = x[3] + 0.01 * rng.normal(size=16)  # a near-copy of record 3
    pairs = near_duplicate_pairs(x, 0.99)
    assert [(i, j) for i, j, _ in pairs] == [(3, 7)]
    y = np.array([0, 1] * 25)  # records 3 and 7 share label 1: not a conflict
    probs = np.full((50, 2), 0.1)
    probs[np.arange(50), y] = 0.9
    assert find_suspects([f"t{i}" for i in range(50)], y, ("a", "b"), probs, x, 0.99)[0] == []
    y[7] = 0
    probs[7] = [0.1, 0.9]
    suspects, summary = find_suspects([f"t{i}" for i in range(50)], y, ("a", "b"), probs, x, 0.99)
    by_index = {s["index"]: s for s in suspects}
    assert "near_duplicate_conflict" in by_index[7]["reasons"] and by_index[7]["suggested_label"] == "b"
    assert summary["counts"]["near_duplicate_conflicts"] == 1 and summary["near_duplicate_pairs"] == 1


def test_ladder_in_a_finetune_run(trained_xlmr):
    meta = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    ladder = {r["rung"]: r for r in meta["ladder"]}
    assert list(ladder) == ["tfidf", "probe", "finetune"]
    assert ladder["finetune"]["macro_f1"] == meta["metrics"]["macro_f1"]
    assert all(r["seconds"] > 0 and 0 <= r["macro_f1"] <= 1 for r in ladder.values())
    assert "Ladder" in open(os.path.join(trained_xlmr, "report", "index.html")).read()

"""cv --holdout_group (issue 24): leave-one-group-out, with a background split across the held-out tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_texts, write_json

from m3cls.cli import main
from m3cls.data.splits import holdout_folds
from m3cls.errors import DataError

PROBE = ["--method", "probe", "--max_length", "48", "--precision", "fp32", "--pooling", "mean"]
GENERATORS = ("gpt4", "qwen", "llama")


def _detector_rows(n=90):
    """Human texts (background) and GPT texts from three 'generators'; every text distinct."""
    rows = []
    for i, (text, label) in enumerate(make_texts(n, seed=61)):
        generator = "human" if label == "Human" else GENERATORS[i % 3]
        rows.append({"text": f"{text} n{i}", "label": label, "generator": generator})
    return rows


def test_held_out_groups_never_reach_their_training_indices():
    rows = _detector_rows()
    values, labels = [r["generator"] for r in rows], [r["label"] for r in rows]
    held, folds = holdout_folds(values, labels, None, {"human"}, 7, "d.json", "generator")
    assert held == sorted(GENERATORS)
    everything = np.arange(len(rows))
    seen = np.concatenate(folds)
    assert sorted(seen.tolist()) == everything.tolist()  # every record tested exactly once
    for value, test in zip(held, folds):
        train = np.setdiff1d(everything, test)
        assert not any(values[i] == value for i in train)  # the held-out generator is never trained on
        assert {values[i] for i in test} == {value, "human"}  # and its test has negatives


def test_cv_holdout_reports_held_out_beside_in_distribution(tiny_xlmr, tmp_path, capsys):
    data = write_json(tmp_path / "d.json", _detector_rows())
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out), *PROBE,
                 "--folds", "3", "--holdout_group", "generator", "--background_groups", "human",
                 "--positive_label", "GPT", "--by", "generator", "--no_report"]) == 0
    printed = capsys.readouterr().out
    assert "held out" in printed and "by generator" in printed
    summary = json.load(open(out / "cv.json"))
    oof = [json.loads(line) for line in open(out / "oof_predictions.jsonl")]
    for value, scores in summary["slices"]["generator"].items():  # out-of-fold slices, as evaluate --by
        mine = [r for r, row in zip(oof, _detector_rows()) if row["generator"] == value]
        assert scores["accuracy"] == pytest.approx(np.mean([r["predicted"] == r["label"] for r in mine]))
        assert scores["accuracy"] == pytest.approx(summary["holdout"].get(value, {"in_distribution": scores})
                                                   ["in_distribution"]["accuracy"])
    holdout = summary["holdout"]
    assert sorted(holdout) == sorted(GENERATORS)
    rows = _detector_rows()
    for value, part in holdout.items():
        test = summary["holdout_settings"]["folds"][value]
        assert all(rows[i]["generator"] in (value, "human") for i in test)
        assert part["held_out"]["n"] == sum(r["generator"] == value for r in rows)
        assert part["held_out"]["auroc"] is not None and part["in_distribution"]["auroc"] is not None
        assert part["drop"]["auroc"] == pytest.approx(part["in_distribution"]["auroc"] - part["held_out"]["auroc"])


def test_holdout_bad_input_is_one_line(tmp_path):
    rows = _detector_rows()
    values, labels = [r["generator"] for r in rows], [r["label"] for r in rows]
    with pytest.raises(DataError, match="needs at least 2"):
        holdout_folds(["gpt4" if v != "human" else v for v in values], labels, None, {"human"}, 0, "d", "generator")
    with pytest.raises(DataError, match="--background_groups"):
        holdout_folds(values, labels, None, set(), 0, "d", "generator")


def test_held_out_models_never_train_on_their_group(tiny_xlmr, tmp_path, monkeypatch):
    """The embeddings each held-out probe head is fitted on hold no record of its held-out generator."""
    import m3cls.probe.head as head
    from m3cls.training import TrainConfig
    from m3cls.training.crossval import CVSettings, run_cv

    data = write_json(tmp_path / "d.json", _detector_rows())
    fitted, original = [], head.fit_head
    monkeypatch.setattr(head, "fit_head", lambda x, *rest: fitted.append(np.asarray(x)) or original(x, *rest))
    config = TrainConfig(model_name_or_path=tiny_xlmr, data_path=data, method="probe", max_length=48,
                         precision="fp32", pooling="mean")
    result = run_cv(config, {"output_dir": str(tmp_path / "cv"), "seed": 5},
                    settings=CVSettings(folds=3, holdout_group="generator", background_groups="human"))
    rows, x = _detector_rows(), result.embeddings
    held = sorted(result.summary["holdout"])
    assert len(fitted) == 3 + len(held)  # the plain folds, then one head per held-out value
    for value, train_x in zip(held, fitted[3:]):
        trained = {row.tobytes() for row in train_x}
        own = [i for i, r in enumerate(rows) if r["generator"] == value]
        assert not any(x[i].tobytes() in trained for i in own)
        others = [i for i, r in enumerate(rows) if r["generator"] not in (value, "human")]
        assert all(x[i].tobytes() in trained for i in others)  # the other generators are all trained on

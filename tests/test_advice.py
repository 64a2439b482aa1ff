"""Advice that fits a person (issue 23): small validation, small classes, a probe that beats fine-tuning, and a
loss curve that is not empty for a short run."""

from __future__ import annotations

import json
import logging
import os

from m3cls.training.advice import data_advice, probe_beats_finetune, small_classes, small_validation


def _rung(key: str, f1: float) -> dict:
    return {"rung": key, "macro_f1": f1, "accuracy": f1, "seconds": 20.0}


def test_small_validation_and_small_classes_are_named():
    assert "only 3 texts" in small_validation(3) and "33 points" in small_validation(3)
    assert small_validation(30) is None
    line = small_classes([0] * 25 + [1] * 4, ("big", "small", "none"))
    assert "small 4" in line and "none 0" in line and "big" not in line.split("(")[1].split(")")[0]
    assert small_classes([0] * 20 + [1] * 20, ("a", "b")) is None


def test_class_counts_only_for_single_label_runs():
    assert len(data_advice("single_label", [0] * 5 + [1] * 5, 2, ("a", "b"))) == 2
    assert len(data_advice("regression", [1.0] * 3, 2, ("x", "y"))) == 1   # targets, not class ids


def test_probe_beating_finetune_gets_advice_with_the_numbers():
    advice = probe_beats_finetune([_rung("tfidf", 0.5), _rung("probe", 0.99), _rung("finetune", 0.67)], 9)
    assert "0.9900" in advice and "0.6700" in advice and "9 optimizer steps" in advice and "--method probe" in advice
    assert probe_beats_finetune([_rung("probe", 0.90), _rung("finetune", 0.895)], 9) is None   # within the margin
    assert probe_beats_finetune([_rung("finetune", 0.5)], 9) is None


def test_a_short_run_logs_the_small_validation_warning_and_keeps_its_loss(tiny_xlmr, tmp_path, caplog):
    from conftest import make_texts, messages_record, write_json

    from m3cls.cli import main

    data = write_json(tmp_path / "few.json", [messages_record(t, y) for t, y in make_texts(40, seed=3)])
    out = tmp_path / "model"
    with caplog.at_level(logging.INFO):
        assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                     "--num_train_epochs", "1", "--max_length", "32", "--precision", "fp32", "--no_ladder",
                     "--no_baseline"]) == 0
    assert "validation has only 4 texts" in caplog.text
    history = json.load(open(out / "m3cls.json"))["history"]
    assert not any("loss" in e for e in history)   # 3 steps, fewer than logging_steps 25
    assert any("train_loss" in e for e in history)
    assert os.path.isfile(out / "report" / "curves.png")
    page = (out / "report" / "index.html").read_text(encoding="utf-8")   # the report says it too, in a box
    assert '<p class="warning"><strong>Warning:</strong> validation has only 4 texts' in page
    assert "<td>this model (fine-tuned)</td>" not in page   # --no_baseline: no comparison table
    assert "Model: fine-tuned." in page
    assert f"done: the model is in {out}; the report is {out / 'report' / 'index.html'}" in caplog.text


def test_loss_curve_of_a_run_shorter_than_logging_steps_shows_its_mean_loss(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from m3cls.reports.pages import curves

    assert curves(plt, str(tmp_path), [{"train_loss": 1.09, "step": 3, "epoch": 1.0}]) == "curves.png"
    assert curves(plt, str(tmp_path), []) is None

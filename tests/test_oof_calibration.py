"""calibrate --from_cv (issue 24): temperature and operating point fitted on cv's out-of-fold probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_texts, write_json

from m3cls.cli import main
from m3cls.metrics.calibration import choose_temperature
from m3cls.metrics.classification import softmax

PROBE = ["--method", "probe", "--max_length", "48", "--precision", "fp32", "--pooling", "mean", "--seed", "3"]


def test_calibrate_from_cv_uses_every_out_of_fold_text(tiny_xlmr, tmp_path, capsys):
    pairs = make_texts(200, seed=81)
    pairs = [(t, ("GPT" if y == "Human" else "Human") if i % 6 == 0 else y) for i, (t, y) in enumerate(pairs)]
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    cv, model = tmp_path / "cv", tmp_path / "m"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(cv), *PROBE,
                 "--folds", "4", "--no_report"]) == 0
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(model),
                 *PROBE, "--no_baseline", "--no_report"]) == 0
    rows = [json.loads(line) for line in open(cv / "oof_predictions.jsonl")]
    names = ("GPT", "Human")
    logits = np.log(np.clip([[r["probabilities"][n] for n in names] for r in rows], 1e-12, 1))
    y = np.array([names.index(r["label"]) for r in rows])
    assert main(["calibrate", "--model_path", str(model), "--from_cv", str(cv)]) == 0
    contract = json.load(open(model / "m3cls.json"))
    assert contract["temperature"] == pytest.approx(choose_temperature(logits, y)[0])
    assert contract["calibration"]["source"] == "out-of-fold"
    assert main(["calibrate", "--model_path", str(model), "--from_cv", str(cv), "--positive_label", "GPT",
                 "--target_fpr", "0.05"]) == 0
    decision = json.load(open(model / "m3cls.json"))["decision"]
    assert decision["target"]["source"] == "out-of-fold" and decision["target"]["texts"] == 200
    scores = softmax(logits, contract["temperature"])[:, 0]
    negatives = scores[y == 1]
    assert (negatives >= decision["threshold"]).sum() <= int(0.05 * len(negatives))  # FPR 5% on the OOF negatives
    assert "out-of-fold" in capsys.readouterr().out


def test_from_cv_refuses_a_folder_without_cv_output(trained_xlmr, tmp_path, capsys):
    assert main(["calibrate", "--model_path", trained_xlmr, "--from_cv", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give the --output_dir of 'm3cls cv'" in err[0]

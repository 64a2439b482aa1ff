"""calibrate --from_cv (issue 24): temperature and operating point fitted on cv's out-of-fold probabilities."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_texts, write_json
from task_data import make_scores

from m3cls.cli import main
from m3cls.metrics.calibration import choose_temperature, expected_calibration_error
from m3cls.metrics.classification import softmax
from m3cls.tasks import TASKS, get_task

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


def _noisy(n, seed):
    """Labelled texts with every sixth label flipped, so no temperature fit is degenerate."""
    pairs = make_texts(n, seed=seed)
    return [{"text": t, "label": ("GPT" if y == "Human" else "Human") if i % 6 == 0 else y}
            for i, (t, y) in enumerate(pairs)]


def test_train_calibrate_on_oof_equals_cv_then_calibrate_from_cv(tiny_xlmr, tmp_path, capsys):
    """train --calibrate_on oof fits the temperature that 'cv' + 'calibrate --from_cv' fit on the same texts,
    saves it with its source, and leaves an 'm3cls cv' folder that calibrate --from_cv reads."""
    data = write_json(tmp_path / "d.json", _noisy(200, 81))
    val = write_json(tmp_path / "v.json", _noisy(60, 82))
    cv, model = tmp_path / "cv", tmp_path / "m"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(cv), *PROBE,
                 "--folds", "4", "--no_report"]) == 0
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--validation_path", val,
                 "--output_dir", str(model), *PROBE, "--no_baseline", "--calibrate_on", "oof",
                 "--calibrate_folds", "4"]) == 0
    capsys.readouterr()
    oof = model / "oof" / "oof_predictions.jsonl"
    assert oof.read_text() == (cv / "oof_predictions.jsonl").read_text()  # the same folds over the same texts
    rows = [json.loads(line) for line in oof.read_text().splitlines()]
    names = ("GPT", "Human")
    logits = np.log(np.clip([[r["probabilities"][n] for n in names] for r in rows], 1e-12, 1))
    y = np.array([names.index(r["label"]) for r in rows])
    contract = json.load(open(model / "m3cls.json"))
    calibration = contract["calibration"]
    assert contract["temperature"] == pytest.approx(choose_temperature(logits, y)[0])
    assert calibration["source"] == "out-of-fold" and calibration["fitted_on"] == str(oof)
    assert calibration["folds"] == 4 and calibration["texts"] == 200
    held_out = calibration["validation"]
    assert held_out["texts"] == 60 and held_out["validation_fitted_temperature"] != contract["temperature"]
    validation = [json.loads(line) for line in open(model / "validation_predictions.jsonl")]
    assert held_out["ece_out_of_fold_fitted"] == pytest.approx(expected_calibration_error(
        np.array([[r["probabilities"][n] for n in names] for r in validation]),
        np.array([names.index(r["label"]) for r in validation])))  # written under the saved temperature
    assert contract["metrics"]["ece"] == held_out["ece_out_of_fold_fitted"]  # the saved model's validation ECE
    report = (model / "report" / "index.html").read_text()  # the report shows the temperature the model carries
    assert f"<td>temperature</td><td>1.0000</td><td>{contract['temperature']:.4f}</td>" in report
    assert f"{held_out['validation_fitted_temperature']:.4f}" not in report
    assert "oof_predictions.jsonl" in (model / "README.md").read_text()
    assert main(["calibrate", "--model_path", str(model), "--from_cv", str(model / "oof")]) == 0
    assert json.load(open(model / "m3cls.json"))["temperature"] == pytest.approx(contract["temperature"])


def test_train_api_calibrate_on_oof_folds_the_training_split_only(tiny_xlmr, tmp_path):
    """The Python API, fine-tuning: the folds cover the training split, not the validation texts, and leave no
    fold model behind."""
    from transformers import TrainingArguments

    from m3cls.training import TrainConfig, train

    data = write_json(tmp_path / "d.json", _noisy(48, 83))
    out = tmp_path / "m"
    result = train(TrainConfig(model_name_or_path=tiny_xlmr, data_path=data, validation_split=0.25,
                               max_length=32, precision="fp32", baseline=False, report=False, ladder=False,
                               calibrate_on="oof", calibrate_folds=2),
                   TrainingArguments(output_dir=str(out), max_steps=2, per_device_train_batch_size=8, use_cpu=True,
                                     report_to="none", seed=4))
    calibration = result.contract.info["calibration"]
    assert calibration["source"] == "out-of-fold" and calibration["folds"] == 2 and calibration["texts"] == 36
    assert json.load(open(out / "m3cls.json"))["temperature"] == result.contract.temperature
    assert sorted(os.listdir(out / "oof")) == ["cv.json", "oof_predictions.jsonl"]
    assert json.load(open(out / "oof" / "cv.json"))["method"] == "finetune"
    assert "calibrate_on: oof" in (out / "train_config.yaml").read_text()  # a rerun with --config does the same


@pytest.mark.parametrize("task", TASKS)
def test_calibrate_on_oof_follows_the_tasks_from_cv_rule(task):
    from m3cls.errors import ConfigError
    from m3cls.training.config import refuse_oof

    if get_task(task).allows("from_cv"):
        refuse_oof(get_task(task))
    else:
        with pytest.raises(ConfigError, match="--calibrate_on oof calibrates single-label models"):
            refuse_oof(get_task(task))


def test_calibrate_on_oof_refusals_are_one_line(tiny_bert, tmp_path, capsys):
    from task_data import make_label_sets

    sets = write_json(tmp_path / "ml.json", [{"text": t, "label": y} for t, y in make_label_sets(40, 3)])
    scores = write_json(tmp_path / "r.json", [{"text": t, "label": y} for t, y in make_scores(40, 3)])
    out = tmp_path / "out"
    cases = [(["train", "--data_path", sets, "--calibrate_on", "oof"], "this model's task is multi_label"),
             (["train", "--data_path", scores, "--task", "regression", "--calibrate_on", "oof"],
              "this model's task is regression"),
             (["train", "--data_path", sets, "--calibrate_on", "folds"], "not one of: validation, oof"),
             (["train", "--data_path", sets, "--calibrate_on", "oof", "--calibrate_folds", "1"], "at least 2"),
             (["cv", "--data_path", scores, "--calibrate_on", "oof"], "is a flag of 'm3cls train'"),
             (["tune", "--data_path", scores, "--calibrate_on", "oof", "--n_trials", "2"],
              "would cross-validate every trial")]
    for argv, message in cases:
        assert main([*argv, "--model_name_or_path", tiny_bert, "--output_dir", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not out.exists()


def test_calibrate_on_oof_pushes_once_after_the_temperature_and_never_a_fold(tiny_bert, tmp_path, monkeypatch):
    """--push_to_hub with --calibrate_on oof: the final run used to upload before the out-of-fold temperature was
    saved, and every fold run uploaded its own model too (the folds' requests kept --push_to_hub)."""
    from m3cls.training import hub, run

    pushes = []

    def take(values):
        if not values.get("push_to_hub"):
            return None
        values["push_to_hub"] = False
        return "target"

    def push(folder, target):
        pushes.append((folder, json.load(open(os.path.join(folder, "m3cls.json")))["calibration"].get("source")))

    for module in (hub, run):
        monkeypatch.setattr(module, "take_hub_target", take)
        monkeypatch.setattr(module, "push_folder", push)
    data = write_json(tmp_path / "d.json", _noisy(48, seed=5))
    out = tmp_path / "m"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "32", "--precision", "fp32", "--num_train_epochs", "1", "--no_baseline",
                 "--no_report", "--no_ladder", "--calibrate_on", "oof", "--calibrate_folds", "2",
                 "--push_to_hub", "--hub_model_id", "me/model"]) == 0
    assert pushes == [(str(out), "out-of-fold")]

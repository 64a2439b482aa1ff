"""The house's library faces: one Task per task type behind one interface, and ``m3cls.evaluate`` /
``m3cls.calibrate`` giving what the commands give."""

from __future__ import annotations

import inspect
import json
import os
import shutil

import pytest

import m3cls
from m3cls.cli import main
from m3cls.errors import ConfigError
from m3cls.tasks import REGISTRY, TOOLS, Task, get_task

INTERFACE = ("prediction_fields", "format_prediction", "truth", "truth_fields", "evaluate", "format_evaluation",
             "calibrate", "baseline",
             "training_hooks", "card_summary", "card_parts", "plain_decision", "write_report", "classes_in",
             "probabilities", "uncertainty", "soft_targets", "hard_target", "decisions", "stress_change")
ATTRIBUTES = ("name", "title", "problem_type", "splitter", "split_method", "best_metric", "summary_keys",
              "output_field", "baseline_name", "card_keys", "distill_target", "stress_keys", "change_keys")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_task_fills_the_interface(name):
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name
    for attribute in ATTRIBUTES:
        assert getattr(task, attribute, None) is not None, attribute
    for method in INTERFACE:  # implemented by the task itself, not the interface's NotImplementedError
        assert getattr(type(task), method) is not getattr(Task, method, None), method
    assert task.tools <= set(TOOLS)
    assert set(task.fixes) <= set(TOOLS)


def test_tools_are_refused_in_one_line_by_task():
    get_task("single_label").refuse("explain")  # allowed: no error
    with pytest.raises(ConfigError, match=r"^runs/x: --explain attributes a single-label decision to words; "
                                          r"this model's task is regression: drop --explain$"):
        get_task("regression").refuse("explain", "runs/x")
    with pytest.raises(ConfigError, match="--threshold applies to multi-label models"):
        get_task("single_label").refuse("thresholds")
    with pytest.raises(ConfigError, match="task 'ordinal' is not one of: single_label, multi_label, regression"):
        get_task("ordinal")


def test_evaluate_gives_what_the_command_writes(trained_xlmr, messages_file, multilabel_run, regression_run,
                                                tmp_path):
    for model, data in ((trained_xlmr, messages_file), (multilabel_run["model"], multilabel_run["val"]),
                        (regression_run["model"], regression_run["val"])):
        out = tmp_path / "e.json"
        assert main(["evaluate", "--model_path", model, "--data_path", data, "--output", str(out),
                     "--precision", "fp32"]) == 0
        from_cli = json.loads(out.read_text())
        clf = m3cls.Classifier.from_pretrained(model, precision="fp32")
        from_api = json.loads(json.dumps(m3cls.evaluate(clf, data)))
        assert _same(from_api, from_cli)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        assert set(a) == set(b)
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
        return True
    assert a == b
    return True


def test_evaluate_takes_records(trained_xlmr):
    from conftest import make_texts

    records = [{"text": t, "label": y} for t, y in make_texts(30, seed=9)]
    result = m3cls.evaluate(trained_xlmr, records)
    assert result["n"] == 30 and 0 <= result["after"]["accuracy"] <= 1
    with pytest.raises(ConfigError, match="record 2 is not a"):
        m3cls.evaluate(trained_xlmr, [records[0], {"text": "no label"}])


def test_calibrate_saves_only_when_asked(trained_xlmr, messages_file, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained_xlmr, model)
    before = (model / "m3cls.json").read_text()
    result = m3cls.calibrate(str(model), messages_file, save=False)
    assert (model / "m3cls.json").read_text() == before  # nothing written
    assert main(["calibrate", "--model_path", str(model), "--data_path", messages_file]) == 0
    saved = json.loads((model / "m3cls.json").read_text())
    assert saved["temperature"] == pytest.approx(result["contract"]["temperature"], rel=1e-6)
    assert result["lines"][0].startswith("temperature ") and str(model) not in result["lines"][0]
    rule = m3cls.calibrate(str(model), messages_file, save=True, target_fpr=0.1, positive_label="GPT")
    saved = json.loads((model / "m3cls.json").read_text())
    assert saved["decision"]["positive_label"] == "GPT" and saved["decision"]["target"]["value"] == 0.1
    assert rule["decision"]["operating_point"]["fpr"] <= 0.1 + 1e-9
    card = (model / "README.md").read_text(encoding="utf-8")
    assert "## Decision rule" in card


def test_library_functions_are_documented():
    for function in (m3cls.evaluate, m3cls.calibrate):
        doc = inspect.getdoc(function)
        assert "Args:" in doc and "Returns:" in doc and ">>> " in doc
    assert os.path.basename(inspect.getsourcefile(m3cls.evaluate)) == "evaluate.py"

"""A cadence flag the user typed is never silently overridden: --save_steps alone sets saving (and evaluation)."""

import json
import logging
import os

import pytest
from conftest import make_texts, write_json

from m3cls.cli import main


def _args(tmp_path, explicit, **flags):
    from transformers import TrainingArguments

    from m3cls.training.args import build_training_args

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **flags)
    return build_training_args(args, "fp32", frozenset(explicit))[0]


def _value(field):
    return str(getattr(field, "value", field))


def test_save_steps_alone_sets_saving_and_evaluation(tmp_path):
    # the parent of the contract change evaluated (and so saved) once per epoch here, and said nothing
    args = _args(tmp_path, {"save_steps"}, save_steps=5)
    assert (_value(args.save_strategy), args.save_steps) == ("steps", 5)
    assert (_value(args.eval_strategy), args.eval_steps) == ("steps", 5)  # the best checkpoint can be kept


def test_save_steps_that_cannot_be_honoured_say_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="m3cls"):
        args = _args(tmp_path, {"save_steps", "eval_strategy"}, save_steps=5, eval_strategy="epoch")
    assert _value(args.save_strategy) == "epoch"
    assert any("--save_steps" in r.getMessage() and "once per epoch" in r.getMessage() for r in caplog.records)


def test_save_steps_through_the_cli_saves_and_evaluates_every_5_steps(tiny_bert, tmp_path):
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(48, seed=4)])
    out = tmp_path / "model"
    # 43 training texts in batches of 8: 6 steps an epoch, so once per epoch would be steps 6 and 12
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "32", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
                 "--save_steps", "5", "--precision", "fp32", "--no_baseline", "--no_report"]) == 0
    meta = json.loads((out / "m3cls.json").read_text())
    last = meta["history"][-1]["step"]
    assert last == 12
    # every 5 steps, and (transformers 5.x) at the last step
    assert [e["step"] for e in meta["history"] if "eval_macro_f1" in e] == [5, 10, 12]
    steps = {int(n.split("-")[1]) for n in os.listdir(out) if n.startswith("checkpoint-")}
    assert 12 in steps and steps <= {5, 10, 12} and len(steps) == 2  # --save_total_limit 2 keeps the best too


@pytest.fixture(autouse=True)
def _propagate(monkeypatch):
    monkeypatch.setattr(logging.getLogger("m3cls"), "propagate", True)

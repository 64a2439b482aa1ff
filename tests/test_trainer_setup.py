"""The Trainer runs in the precision m3cls chose, and explicit evaluation flags are honoured."""

import json

import pytest
from conftest import make_texts, write_json


def _linear_dtypes(monkeypatch) -> list:
    """Record the output dtype of every Linear layer the Trainer runs during training."""
    import torch

    from m3cls.training import trainer as trainer_module

    seen = []
    original = trainer_module.build_trainer

    def build_and_watch(model, *args, **kwargs):
        def hook(module, inputs, output):
            if module.training:
                seen.append(output.dtype)

        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(hook)
        return original(model, *args, **kwargs)

    monkeypatch.setattr("m3cls.training.trainer.build_trainer", build_and_watch)
    return seen


@pytest.mark.parametrize("precision, expected", [("bf16", "torch.bfloat16"), ("fp32", "torch.float32")])
def test_training_runs_in_the_chosen_precision(tiny_bert, tmp_path, monkeypatch, precision, expected):
    # TrainingArguments derives accelerate's mixed precision when it is built; m3cls picks the precision
    # later, so it must pass it on, or "bf16" would be recorded while every matrix product ran in fp32
    from transformers import TrainingArguments

    from m3cls import TrainConfig, train

    seen = _linear_dtypes(monkeypatch)
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(24, seed=2)])
    args = TrainingArguments(output_dir=str(tmp_path / "model"), max_steps=2, per_device_train_batch_size=8,
                             report_to="none")
    result = train(TrainConfig(model_name_or_path=tiny_bert, data_path=data, max_length=32, precision=precision,
                               baseline=False, report=False), args)
    assert result.contract.info["precision"] == precision
    assert seen and {str(d) for d in seen} == {expected}


def test_explicit_eval_strategy_no_skips_evaluation_during_training(tiny_bert, tmp_path):
    from m3cls.cli import main

    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=3)])
    out = tmp_path / "model"
    code = main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "32", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
                 "--eval_strategy", "no", "--save_strategy", "no", "--no_baseline", "--no_report",
                 "--logging_steps", "1"])
    assert code == 0
    meta = json.loads((out / "m3cls.json").read_text())
    assert not [e for e in meta["history"] if "eval_macro_f1" in e]  # no evaluation while training
    assert [e for e in meta["history"] if "loss" in e]
    assert 0.0 <= meta["metrics"]["macro_f1"] <= 1.0  # the final model is still scored on validation
    assert not list(out.glob("checkpoint-*"))


@pytest.mark.parametrize("kind", ["amx", "avx2"])
@pytest.mark.parametrize("flag", ["--fp16", "--bf16"])
def test_reference_precision_flags_work_on_a_cpu(tiny_bert, tmp_path, monkeypatch, fake_cpu, flag, kind):
    # the reference passes --fp16; on a CPU m3cls runs bf16 where the CPU has it, else fp32; --bf16 as typed
    from m3cls.cli import main

    fake_cpu(kind)
    expected = "bf16" if flag == "--bf16" or kind == "amx" else "fp32"
    seen = _linear_dtypes(monkeypatch)
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(24, seed=2)])
    out = tmp_path / "model"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "32", "--max_steps", "2", "--per_device_train_batch_size", "8", flag,
                 "--no_baseline", "--no_report"]) == 0
    assert json.loads((out / "m3cls.json").read_text())["precision"] == expected
    assert {str(d) for d in seen} == {"torch.bfloat16" if expected == "bf16" else "torch.float32"}

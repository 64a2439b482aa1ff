"""The CPU kind decides what ``auto`` runs: each kind's flags are faked, on whatever CPU runs the suite."""

from __future__ import annotations

import pytest
import torch

#: kind -> (precision auto picks for prediction and training, int8 format, demo epochs)
EXPECTED = {"amx": ("bf16", "u8s8", "2"), "avx512_bf16": ("bf16", "u8s8", "2"),
            "avx512": ("fp32", "u8u8", "1"), "avx2": ("fp32", "u8u8", "1")}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_auto_chooses_per_cpu_kind(fake_cpu, kind):
    from m3cls.cpukinds import cpu_kind
    from m3cls.export.quantize import resolve_int8_format
    from m3cls.model.loading import choose_precision
    from m3cls.training.args import build_training_args, resolve_precision

    fake_cpu(kind)
    precision, fmt, _ = EXPECTED[kind]
    assert cpu_kind() == kind
    assert choose_precision("auto", torch.device("cpu")) == precision  # prediction, probe embeddings
    # training: auto, and the reference's --fp16 (a GPU precision) become the CPU's best
    assert resolve_precision({"use_cpu": True}, "auto") == precision
    assert resolve_precision({"use_cpu": True, "fp16": True}, "auto") == precision
    args, resolved = build_training_args({"output_dir": "unused", "use_cpu": True, "eval_strategy": "epoch"}, "auto")
    assert resolved == precision and args.bf16 == (precision == "bf16") and not args.fp16
    assert resolve_int8_format("auto") == fmt


def test_typed_choices_are_kept_on_any_kind(fake_cpu):
    from m3cls.export.quantize import resolve_int8_format
    from m3cls.model.loading import choose_precision

    fake_cpu("avx2")
    assert choose_precision("bf16", torch.device("cpu")) == "bf16"  # asked for: runs (emulated), not replaced
    assert resolve_int8_format("u8s8") == "u8s8"


def test_unreadable_cpu_is_the_plain_kind():
    from m3cls.cpukinds import cpu_kind, int8_format

    assert cpu_kind(frozenset()) == "basic" and int8_format(frozenset()) == "u8u8"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_demo_settings_per_cpu_kind(fake_cpu, monkeypatch, tmp_path, caplog, kind):
    import logging

    from m3cls.cli import train as cli_train

    fake_cpu(kind)
    seen = {}
    monkeypatch.setattr(cli_train, "cmd_train", lambda argv: seen.setdefault("train", argv))
    monkeypatch.setattr("m3cls.cli.predict.cmd_predict", lambda argv: 0)
    monkeypatch.setattr("m3cls.data.demo.write_bbc_messages", lambda path: 3)
    with caplog.at_level(logging.INFO, logger="m3cls"):
        assert cli_train.cmd_demo(["--workdir", str(tmp_path)]) == 0
    argv = seen["train"]
    assert argv[argv.index("--num_train_epochs") + 1] == EXPECTED[kind][2]
    assert argv[argv.index("--max_length") + 1] == "128"
    assert f"CPU kind {kind}" in caplog.text  # the demo says what it chose and why
    seen.clear()
    cli_train.cmd_demo(["--workdir", str(tmp_path), "--num_train_epochs", "3"])  # typed: kept
    assert seen["train"][seen["train"].index("--num_train_epochs") + 1] == "3"

"""Runs that are killed or interrupted: resume, clean Ctrl-C, no half-written model folder."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import make_texts, write_json

from m3cls.cli import main

FLAGS = ["--num_train_epochs", "6", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
         "--max_length", "32", "--seed", "3", "--precision", "fp32", "--eval_steps", "10", "--save_steps", "10",
         "--save_total_limit", "3", "--no_baseline", "--no_report", "--logging_steps", "5"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash")
    return write_json(folder / "train.json", [{"text": t, "label": y} for t, y in make_texts(120, seed=9)])


def _train_process(model, data, out, *extra):
    env = dict(os.environ, M3CLS_LOG_LEVEL="INFO")
    return subprocess.Popen([sys.executable, "-m", "m3cls", "train", "--model_name_or_path", model, "--data_path",
                             data, "--output_dir", out, *FLAGS, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path, process, timeout=120):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if process.poll() is not None:
            raise AssertionError(f"training ended before {path} appeared: {process.stderr.read()[-2000:]}")
        if time.time() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


def test_sigkilled_run_resumes_and_matches_an_uninterrupted_one(tiny_bert, data, tmp_path):
    straight = str(tmp_path / "straight")
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", straight,
                 *FLAGS]) == 0
    killed = str(tmp_path / "killed")
    process = _train_process(tiny_bert, data, killed)
    _wait_for(os.path.join(killed, "checkpoint-20", "trainer_state.json"), process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not os.path.exists(os.path.join(killed, "m3cls.json"))  # no final model from a killed run
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", killed,
                 *FLAGS, "--resume_from_checkpoint", "auto"]) == 0
    a = json.load(open(os.path.join(straight, "m3cls.json")))
    b = json.load(open(os.path.join(killed, "m3cls.json")))
    # same seed, same data order (the sampler and RNG states are restored): same result up to float noise
    assert b["metrics"]["accuracy"] == pytest.approx(a["metrics"]["accuracy"], abs=0.01)
    assert b["metrics"]["log_loss"] == pytest.approx(a["metrics"]["log_loss"], rel=0.05, abs=1e-3)


def test_incomplete_checkpoints_are_skipped(tmp_path):
    from m3cls.training.checkpoints import latest_valid_checkpoint

    good = tmp_path / "checkpoint-10"
    good.mkdir()
    for name in ("model.safetensors", "trainer_state.json", "optimizer.pt"):
        (good / name).write_text("x")
    (tmp_path / "checkpoint-20").mkdir()  # killed while saving: no trainer_state.json
    (tmp_path / "checkpoint-20" / "model.safetensors").write_text("x")
    assert latest_valid_checkpoint(str(tmp_path)) == str(good)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tiny_bert, data, tmp_path):
    out = str(tmp_path / "interrupted")
    process = _train_process(tiny_bert, data, out, "--num_train_epochs", "200")
    _wait_for(os.path.join(out, "checkpoint-10", "trainer_state.json"), process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert "interrupted at step" in last and "--resume_from_checkpoint auto" in last
    assert "Traceback" not in err
    assert not os.path.exists(os.path.join(out, "m3cls.json"))
    from m3cls.training.checkpoints import latest_valid_checkpoint

    assert latest_valid_checkpoint(out) is not None


def test_existing_output_folder_is_refused_before_training(tiny_bert, data, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *FLAGS]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"]

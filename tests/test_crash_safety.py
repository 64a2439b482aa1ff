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


def _record_steps(monkeypatch) -> list[int]:
    """The global step after each optimizer step the Trainer runs in this process."""
    from transformers import TrainerCallback

    from m3cls.training import trainer as trainer_module

    steps: list[int] = []
    original = trainer_module.build_trainer

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    def build(*args, **kwargs):
        trainer = original(*args, **kwargs)
        trainer.add_callback(Steps())
        return trainer

    monkeypatch.setattr(trainer_module, "build_trainer", build)
    return steps


def test_sigkilled_run_resumes_and_matches_an_uninterrupted_one(tiny_bert, data, tmp_path, monkeypatch):
    from m3cls.training.checkpoints import latest_valid_checkpoint

    steps = _record_steps(monkeypatch)
    straight = str(tmp_path / "straight")
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", straight,
                 *FLAGS]) == 0
    total = steps[-1]
    killed = str(tmp_path / "killed")
    process = _train_process(tiny_bert, data, killed)
    _wait_for(os.path.join(killed, "checkpoint-20", "trainer_state.json"), process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not os.path.exists(os.path.join(killed, "m3cls.json"))  # no final model from a killed run
    start = int(latest_valid_checkpoint(killed).rsplit("-", 1)[1])
    assert start >= 20
    steps.clear()
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", killed,
                 *FLAGS, "--resume_from_checkpoint", "auto"]) == 0
    # the resumed run starts after the checkpoint's step (a restart from step 0 would also end well)
    assert steps == list(range(start + 1, total + 1)), (start, steps[:3])
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


# Checkpoint folders as the writers lay them out (transformers 5.x Trainer._save_checkpoint):
# - DeepSpeed (engine.save_checkpoint): global_stepN/ with *_model_states.pt and one *_optim_states.pt per rank,
#   then a "latest" file naming that folder; no optimizer.pt, and under ZeRO-3 without
#   stage3_gather_16bit_weights_on_model_save no model.safetensors either;
# - FSDP (accelerate save_fsdp_model/save_fsdp_optimizer): FULL_STATE_DICT writes pytorch_model_fsdp.bin and
#   optimizer.bin; SHARDED_STATE_DICT writes torch.distributed.checkpoint folders pytorch_model_fsdp_0/ and
#   optimizer_0/ (".metadata" last), or with use_dcp=False per-rank *_0_rank{r}.bin files.
# The Trainer writes trainer_state.json after all of these.
COMMON = ["trainer_state.json", "config.json", "training_args.bin", "rng_state_0.pth", "rng_state_1.pth"]
LAYOUTS = {
    "deepspeed_zero2": ["model.safetensors", "latest=global_step20", "zero_to_fp32.py",
                        "global_step20/mp_rank_00_model_states.pt",
                        "global_step20/bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
                        "global_step20/bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"],
    "deepspeed_zero3_no_gather": ["latest=global_step20", "zero_to_fp32.py",
                                  "global_step20/zero_pp_rank_0_mp_rank_00_model_states.pt",
                                  "global_step20/zero_pp_rank_1_mp_rank_00_model_states.pt",
                                  "global_step20/zero_pp_rank_0_mp_rank_00_optim_states.pt",
                                  "global_step20/zero_pp_rank_1_mp_rank_00_optim_states.pt"],
    "fsdp_full_state_dict": ["model.safetensors", "pytorch_model_fsdp.bin", "optimizer.bin", "scheduler.pt"],
    "fsdp_sharded_state_dict": ["pytorch_model_fsdp_0/__0_0.distcp", "pytorch_model_fsdp_0/__1_0.distcp",
                                "pytorch_model_fsdp_0/.metadata", "optimizer_0/__0_0.distcp",
                                "optimizer_0/__1_0.distcp", "optimizer_0/.metadata", "scheduler.pt"],
    "fsdp_sharded_without_dcp": ["pytorch_model_fsdp_0_rank0.bin", "pytorch_model_fsdp_0_rank1.bin",
                                 "optimizer_0_rank0.bin", "optimizer_0_rank1.bin", "scheduler.pt"],
}
# the same, killed while saving
INCOMPLETE = {
    "deepspeed_before_latest": [n for n in LAYOUTS["deepspeed_zero2"] if not n.startswith("latest")],
    "deepspeed_latest_names_no_folder": ["model.safetensors", "latest=global_step20"],
    "deepspeed_no_optimizer_states": ["model.safetensors", "latest=global_step20",
                                      "global_step20/mp_rank_00_model_states.pt"],
    "fsdp_sharded_optimizer_unfinished": [n for n in LAYOUTS["fsdp_sharded_state_dict"]
                                          if n != "optimizer_0/.metadata"],
    "fsdp_without_optimizer": ["model.safetensors", "pytorch_model_fsdp.bin", "scheduler.pt"],
    "fsdp_model_unfinished": [n for n in LAYOUTS["fsdp_sharded_state_dict"]
                              if n != "pytorch_model_fsdp_0/.metadata"],
}


def _lay_out(folder, names, common=COMMON):
    for name in [*common, *names]:
        name, _, content = name.partition("=")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content or "x")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_resume_auto_finds_deepspeed_and_fsdp_checkpoints(tmp_path, layout):
    from m3cls.training.checkpoints import latest_valid_checkpoint

    _lay_out(tmp_path / "checkpoint-10", ["model.safetensors", "optimizer.pt", "scheduler.pt"])
    _lay_out(tmp_path / "checkpoint-20", LAYOUTS[layout])
    assert latest_valid_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-20")
    (tmp_path / "checkpoint-20" / "trainer_state.json").unlink()  # the Trainer had not finished this one
    assert latest_valid_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")


@pytest.mark.parametrize("layout", sorted(INCOMPLETE))
def test_resume_auto_skips_half_written_deepspeed_and_fsdp_checkpoints(tmp_path, layout):
    from m3cls.training.checkpoints import latest_valid_checkpoint

    _lay_out(tmp_path / "checkpoint-10", LAYOUTS["fsdp_full_state_dict"])
    _lay_out(tmp_path / "checkpoint-20", INCOMPLETE[layout])
    (tmp_path / "checkpoint-①").mkdir()  # not a checkpoint the Trainer wrote: ignored, not a crash
    assert latest_valid_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-10")


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

"""Surviving interruptions: resume from the latest complete checkpoint, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading

from ..errors import ConfigError

logger = logging.getLogger(__name__)


def resume_path(args) -> str | None:
    """What ``--resume_from_checkpoint`` names: None, a folder, or for ``auto`` the latest complete one."""
    value = args.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        return None
    if value == "auto":
        last = latest_valid_checkpoint(args.output_dir)
        if last is None:
            logger.info("--resume_from_checkpoint auto: no complete checkpoint in %s, starting fresh",
                        args.output_dir)
        else:
            logger.info("resuming from %s", last)
        return last
    if not os.path.isdir(value):
        raise ConfigError(f"--resume_from_checkpoint {value}: no such folder; give a checkpoint-N folder or auto")
    return value


_CHECKPOINT = re.compile(r"checkpoint-([0-9]+)")


def latest_valid_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` that was written completely (a kill during a save leaves one that is not)."""
    if not os.path.isdir(output_dir):
        return None
    steps = sorted((int(m.group(1)) for m in map(_CHECKPOINT.fullmatch, os.listdir(output_dir)) if m),
                   reverse=True)
    for step in steps:
        folder = os.path.join(output_dir, f"checkpoint-{step}")
        layout = checkpoint_layout(folder)
        if layout:
            logger.debug("%s: a complete %s checkpoint", folder, layout)
            return folder
        logger.warning("skipping incomplete checkpoint %s", folder)
    return None


def checkpoint_layout(folder: str) -> str | None:
    """Who wrote this complete checkpoint: ``trainer``, ``deepspeed`` or ``fsdp``; None if it is incomplete.

    The Trainer writes ``trainer_state.json`` after the weights and the optimizer state, whichever library
    laid those out: plain ``optimizer.pt``, DeepSpeed's ``global_stepN/`` (committed by its ``latest``
    file), or FSDP's ``optimizer.bin`` / ``optimizer_0/`` (torch.distributed.checkpoint, ``.metadata`` last).
    """
    if not os.path.isdir(folder):
        return None
    names = set(os.listdir(folder))
    if "trainer_state.json" not in names:
        return None
    if "optimizer.pt" in names and any(n.endswith(".safetensors") for n in names):
        return "trainer"
    if _deepspeed_complete(folder, names):
        return "deepspeed"
    if _fsdp_complete(folder, names):
        return "fsdp"
    return None


def _deepspeed_complete(folder: str, names: set[str]) -> bool:
    """``latest`` names a tag folder holding the model states and the ZeRO optimizer shards."""
    if "latest" not in names:
        return False
    try:
        with open(os.path.join(folder, "latest"), encoding="utf-8") as f:
            tag = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return False
    tag_folder = os.path.join(folder, tag)
    if not tag or os.path.dirname(tag) or not os.path.isdir(tag_folder):
        return False
    states = os.listdir(tag_folder)
    return any(n.endswith("_model_states.pt") for n in states) and \
        any(n.endswith("_optim_states.pt") for n in states)


def _fsdp_complete(folder: str, names: set[str]) -> bool:
    """Model and optimizer state as accelerate's FSDP savers write them, for every state-dict type."""
    return _fsdp_saved(folder, names, "pytorch_model_fsdp", extra_model=True) and \
        _fsdp_saved(folder, names, "optimizer")


def _fsdp_saved(folder: str, names: set[str], prefix: str, extra_model: bool = False) -> bool:
    """``PREFIX.bin`` (full), ``PREFIX[_i]_rank{r}.bin`` (local, or sharded without DCP), or a finished DCP
    folder ``PREFIX_i/`` (sharded); for the model, also the Trainer's own ``*.safetensors``."""
    if extra_model and any(n.endswith(".safetensors") for n in names):
        return True
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        if re.fullmatch(r"(_[0-9]+)?(_rank[0-9]+)?\.bin", rest):
            return True
        if re.fullmatch(r"_[0-9]+", rest) and os.path.isfile(os.path.join(folder, name, ".metadata")):
            return True
    return False


@contextlib.contextmanager
def stop_on_sigint():
    """While training, the first Ctrl-C asks the Trainer to save a checkpoint and stop at the next step."""
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        requested = False

        def on_step_end(self, args, state, control, **kwargs):
            if self.requested:
                control.should_save = True
                control.should_training_stop = True
            return control

    interrupt = Interrupt()

    def handler(signum, frame):
        if interrupt.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        interrupt.requested = True
        logger.warning("Ctrl-C: saving a checkpoint at the end of this step, then stopping (Ctrl-C again to "
                       "stop at once)")

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupt
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

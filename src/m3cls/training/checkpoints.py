"""Surviving interruptions: resume from the latest complete checkpoint, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
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


def latest_valid_checkpoint(output_dir: str) -> str | None:
    """The newest ``checkpoint-N`` that was written completely (a kill during a save leaves one that is not)."""
    if not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        if name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            steps.append(int(name[len("checkpoint-"):]))
    for step in sorted(steps, reverse=True):
        folder = os.path.join(output_dir, f"checkpoint-{step}")
        names = set(os.listdir(folder))
        weights = any(n.endswith(".safetensors") for n in names)
        if weights and {"trainer_state.json", "optimizer.pt"} <= names:
            return folder
        logger.warning("skipping incomplete checkpoint %s", folder)
    return None


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

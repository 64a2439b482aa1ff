"""TrainingArguments, built once with their final values: precision, evaluation and saving cadence.

transformers derives several fields when TrainingArguments is constructed (``mixed_precision``, which the
Trainer hands to accelerate, and DeepSpeed's "auto" precision fields). Setting ``bf16`` afterwards would be
logged but not run, so m3cls settles every value first and constructs the object once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any

from ..errors import ConfigError

logger = logging.getLogger(__name__)

#: m3cls' defaults for TrainingArguments flags (they differ from transformers' where the README says so)
TRAIN_DEFAULTS = dict(train_sampling_strategy="group_by_length", per_device_train_batch_size=16,
                      per_device_eval_batch_size=32, logging_steps=25, save_total_limit=2, report_to="none",
                      warmup_steps=0.1, num_train_epochs=3.0,
                      # True makes the Trainer scale each rank's loss by the number of processes, and log it
                      # so scaled; with one item per text and equal per-rank batches, False gives the same
                      # gradients and a logged loss that matches a single process
                      average_tokens_across_devices=False)


def cpu_defaults() -> dict:
    """Defaults for a machine with no accelerator, set before the device is set up.

    use_cpu lets ``--bf16`` pass transformers' check on a CPU; under torchrun the ranks also need gloo.
    """
    import torch

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    defaults = {"use_cpu": True}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        defaults["ddp_backend"] = "gloo"
    return defaults


def as_values(args) -> dict[str, Any]:
    """The constructor values of a TrainingArguments, or of a dict of some of them (the rest take
    transformers' defaults, as the command line's do)."""
    if isinstance(args, dict):
        return {**field_defaults(), **args}
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.init}


def field_defaults() -> dict[str, Any]:
    """Each TrainingArguments constructor field's default (what ``m3cls train --help`` shows)."""
    from transformers import TrainingArguments

    out = {}
    for f in dataclasses.fields(TrainingArguments):
        if f.init:
            factory = f.default_factory  # type: ignore[misc]
            out[f.name] = factory() if factory is not dataclasses.MISSING else \
                (None if f.default is dataclasses.MISSING else f.default)
    return out


def check_field_names(args) -> None:
    """A dict of TrainingArguments values from Python: every key must be a field (one line naming the rest)."""
    if not isinstance(args, dict):
        return
    import difflib

    import transformers

    names = field_defaults()
    unknown = sorted(set(args) - set(names))
    if unknown:
        near = difflib.get_close_matches(unknown[0], names, n=1)
        raise ConfigError(f"not TrainingArguments fields in transformers {transformers.__version__}: "
                          f"{', '.join(unknown)}" + (f" (did you mean {near[0]}?)" if near else ""))


def build_training_args(args, precision: str, explicit: frozenset[str] = frozenset(), task: str = "single_label",
                        quiet: bool = False):
    """Construct TrainingArguments once from ``args`` (an instance or its values) with m3cls' final settings.

    ``explicit`` names the flags the user typed, so a default can follow another flag (``--eval_steps 100``
    alone means evaluating and saving every 100 steps, as in the reference script). The best checkpoint is
    chosen by the task's score (``Task.best_metric``). Returns the arguments and the precision that will run.
    ``quiet`` logs nothing (a request's check builds them once on trial, before the run builds them).
    """
    from transformers import TrainingArguments

    values = as_values(args)
    check_trackers(values.get("report_to"))
    for key, value in cpu_defaults().items():  # no accelerator: the CPU, and gloo between processes
        if not values.get(key):
            values[key] = value
    resolved = resolve_precision(values, precision)
    from ..tasks import get_task

    metric, greater = get_task(task).best_metric
    values.update(fp16=resolved == "fp16", bf16=resolved == "bf16", load_best_model_at_end=True,
                  metric_for_best_model=metric, greater_is_better=greater)
    values.update(_cadence(values, explicit, quiet))
    if get_task(task).random_batches and "train_sampling_strategy" not in explicit \
            and values.get("train_sampling_strategy") == "group_by_length":
        # batches of texts of one length hold similar targets wherever length goes with the target, and MSE then
        # learns little more than the mean (README, "Task types", measured); regression draws batches at random
        values["train_sampling_strategy"] = "random"
        (logger.debug if quiet else logger.info)("regression: training batches drawn at random "
                                                 "(--train_sampling_strategy group_by_length to group them by length)")
    if values.get("disable_tqdm") is None or "disable_tqdm" not in explicit:
        values["disable_tqdm"] = not sys.stderr.isatty()
    if not _on_gpu(values):
        values["dataloader_pin_memory"] = False
    if values.get("ddp_find_unused_parameters") is None:
        values["ddp_find_unused_parameters"] = False
    try:
        return TrainingArguments(**values), resolved
    except ValueError as e:  # transformers' own consistency checks
        raise ConfigError(" ".join(str(e).split())) from None


def check_trackers(report_to) -> None:
    """``--report_to``: fail before training, with the install line, when a tracker's package is missing."""
    from ..files import require

    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    for name in names:
        if name in TRACKER_EXTRAS:
            require(name, TRACKER_EXTRAS[name], f"--report_to {name}")


#: trackers with an m3cls extra that installs them (others: see transformers' report_to)
TRACKER_EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def _on_gpu(values: dict) -> bool:
    import torch

    return torch.cuda.is_available() and not values.get("use_cpu")


def resolve_precision(values: dict, precision: str) -> str:
    """``--precision`` (or the reference's ``--fp16``/``--bf16``) resolved for the device that will train."""
    import torch

    from ..model.loading import choose_precision

    requested = precision
    if precision == "auto" and values.get("fp16"):
        requested = "fp16"
    elif precision == "auto" and values.get("bf16"):
        requested = "bf16"
    return choose_precision(requested, torch.device("cuda" if _on_gpu(values) else "cpu"))


def _cadence(values: dict, explicit: frozenset[str], quiet: bool = False) -> dict:
    """Evaluation and saving points; saving follows evaluation so the best checkpoint can be kept.

    A cadence flag the user typed is never dropped in silence: ``--save_steps N`` alone makes evaluation
    follow it too, and where it cannot be honoured one warning line says what happens instead.
    """
    strategy = str(getattr(values.get("eval_strategy"), "value", values.get("eval_strategy")))
    if strategy == "no" and "eval_strategy" in explicit:
        # asked for: no evaluation during training (the final model is still scored on validation);
        # without evaluations there is no best checkpoint to go back to
        return {"load_best_model_at_end": False}
    save_steps = values.get("save_steps")
    steps_typed = "eval_steps" in explicit or "save_steps" in explicit
    if strategy == "no" or (steps_typed and "eval_strategy" not in explicit):
        strategy = "steps" if steps_typed or values.get("eval_steps") else "epoch"
    changes: dict[str, Any] = {"eval_strategy": strategy, "save_strategy": strategy}
    if strategy != "steps":
        if ("save_steps" in explicit or "save_strategy" in explicit) and not quiet:
            logger.warning("--save_steps/--save_strategy: saving follows --eval_strategy %s (once per %s) so the "
                           "best checkpoint can be kept; use --eval_strategy steps --eval_steps N to save every "
                           "N steps", strategy, strategy)
        return changes
    eval_steps = values.get("eval_steps") if "eval_steps" in explicit or "save_steps" not in explicit \
        else save_steps
    eval_steps = eval_steps or values.get("logging_steps")
    changes["eval_steps"] = eval_steps
    if "save_steps" not in explicit or save_steps % eval_steps:
        if "save_steps" in explicit and not quiet:
            logger.warning("--save_steps %s is not a multiple of --eval_steps %s; saving every %s steps so "
                           "the best checkpoint can be kept", save_steps, eval_steps, eval_steps)
        changes["save_steps"] = eval_steps
    return changes

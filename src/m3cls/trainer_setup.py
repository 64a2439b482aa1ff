"""The one place that adjusts TrainingArguments and builds the transformers Trainer.

Kept apart from ``training.py`` so that the data/labels/output checks read without Trainer plumbing.
"""

from __future__ import annotations

import logging
import os
import sys

import torch
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

from .labels import LabelSet
from .meta import write_meta
from .modeling import choose_precision

logger = logging.getLogger(__name__)


def cpu_defaults() -> dict:
    """TrainingArguments defaults for a machine with no accelerator, set before its device is set up.

    use_cpu lets ``--bf16`` pass transformers' check on a CPU; under torchrun the ranks also need gloo.
    """
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return {}
    defaults = {"use_cpu": True}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        defaults["ddp_backend"] = "gloo"
    return defaults


def finalize_args(args, precision: str, explicit: frozenset[str] = frozenset()):
    """Settle precision, evaluation/saving cadence and best-model tracking on ``args`` (in place).

    ``explicit`` names the flags the user typed, so a default can follow another flag (``--eval_steps 100``
    alone means evaluating every 100 steps and saving at the same points, as in the reference script).
    Returns the precision that will run.
    """
    on_gpu = torch.cuda.is_available() and not args.use_cpu
    requested = "fp16" if args.fp16 and precision == "auto" else "bf16" if args.bf16 and precision == "auto" \
        else precision
    resolved = choose_precision(requested, torch.device("cuda" if on_gpu else "cpu"))
    changes = {"fp16": resolved == "fp16", "bf16": resolved == "bf16", "load_best_model_at_end": True,
               "metric_for_best_model": "macro_f1", "greater_is_better": True}
    eval_strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    if eval_strategy == "no" and "eval_strategy" in explicit:
        # asked for: no evaluation during training (the final model is still scored on validation);
        # without evaluations there is no best checkpoint to go back to
        changes["load_best_model_at_end"] = False
    else:
        if eval_strategy == "no" or ("eval_steps" in explicit and "eval_strategy" not in explicit):
            eval_strategy = "steps" if "eval_steps" in explicit or args.eval_steps else "epoch"
        changes["eval_strategy"] = eval_strategy
        changes["save_strategy"] = eval_strategy
    if eval_strategy == "steps":
        eval_steps = args.eval_steps or args.logging_steps
        changes["eval_steps"] = eval_steps
        if "save_steps" not in explicit or args.save_steps % eval_steps:
            if "save_steps" in explicit:
                logger.warning("--save_steps %s is not a multiple of --eval_steps %s; saving every %s steps so "
                               "the best checkpoint can be kept", args.save_steps, eval_steps, eval_steps)
            changes["save_steps"] = eval_steps
    if args.disable_tqdm is None or "disable_tqdm" not in explicit:
        changes["disable_tqdm"] = not sys.stderr.isatty()
    if not on_gpu:
        changes["dataloader_pin_memory"] = False
    if args.ddp_find_unused_parameters is None:
        changes["ddp_find_unused_parameters"] = False
    # TrainingArguments derives mixed_precision (what the Trainer hands to accelerate) when it is built;
    # without this, bf16/fp16 chosen here would be recorded but the model would run in fp32
    changes["mixed_precision"] = resolved if resolved in ("fp16", "bf16") else "no"
    for key, value in changes.items():
        setattr(args, key, value)
    return resolved


def build_trainer(model, args, tokenizer, train_set, val_set, labels: LabelSet, meta: dict,
                  class_weights: list[float] | None = None, early_stopping_patience: int | None = None):
    """A Trainer that pads per batch, reports macro-F1, logs to stderr and stamps checkpoints."""
    from .training import compute_metrics_for

    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if args.fp16 or args.bf16 else None)
    trainer = Trainer(model=model, args=args, data_collator=collator, train_dataset=train_set,
                      eval_dataset=val_set, processing_class=tokenizer,
                      compute_metrics=compute_metrics_for(labels),
                      compute_loss_func=_weighted_loss(class_weights) if class_weights else None)
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not args.disable_tqdm:
        trainer.add_callback(_QuietProgress())
    trainer.add_callback(_LogCallback())
    trainer.add_callback(_MetaCallback(meta))
    if early_stopping_patience:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    return trainer


def _weighted_loss(weights: list[float]):
    """Cross-entropy with class weights, summed and divided by the items in the (accumulated) batch."""
    weight = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        total = torch.nn.functional.cross_entropy(logits, labels, weight=weight.to(logits.device), reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return total / count

    return loss


class _QuietProgress(ProgressCallback):
    """tqdm bars on stderr; log dicts go to the logger instead of being written to stdout."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


class _LogCallback(TrainerCallback):
    """One plain log line per Trainer log event (loss, learning rate, validation scores)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        keep = {k: v for k, v in logs.items()
                if not k.startswith(("eval_precision_", "eval_recall_", "eval_f1_")) and k != "total_flos"}
        parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in keep.items()]
        logger.info("step %d/%d: %s", state.global_step, state.max_steps, " ".join(parts))


class _MetaCallback(TrainerCallback):
    """Writes m3cls.json into each checkpoint, so ``predict --model_path checkpoint-N`` knows max_length."""

    def __init__(self, meta: dict):
        self.meta = meta

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            model = kwargs.get("model")
            if model is not None and hasattr(model, "get_base_model"):  # LoRA: keep the labels with the adapter
                model.get_base_model().config.save_pretrained(folder)
            write_meta(folder, dict(self.meta, checkpoint_step=state.global_step))

"""The transformers Trainer as m3cls uses it: per-batch padding, macro-F1, quiet logs, stamped checkpoints."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

from ..metrics.classification import classification_report, flat_metrics
from ..model.contract import ModelContract, write_contract
from ..model.loading import quiet_save_bars
from ..tasks.labels import LabelSet

logger = logging.getLogger(__name__)


class _Trainer(Trainer):
    """Evaluation in data order: transformers would group validation batches by length too, and m3cls keeps
    each validation text's probabilities (``validation_predictions.jsonl``) beside the model. Saves draw no
    transformers progress bar (:func:`m3cls.model.loading.quiet_save_bars`)."""

    def _save(self, *args, **kwargs):
        """Every checkpoint and final save of the Trainer, without transformers' save bar."""
        with quiet_save_bars():
            return super()._save(*args, **kwargs)

    def _get_eval_sampler(self, eval_dataset):
        if self.args.world_size <= 1:
            return SequentialSampler(eval_dataset)
        return None  # the distributed sampler: accelerate gathers the ranks' rows back in order


def compute_metrics_for(labels: LabelSet, val_set=None):
    """The Trainer's compute_metrics: accuracy, macro-F1 and per-class scores (per document when the
    validation set holds windows)."""
    from .inputs import document_logits

    bounds = getattr(val_set, "bounds", None)

    def compute(eval_pred) -> dict:
        if bounds is None:
            predicted, truth = np.asarray(eval_pred.predictions).argmax(axis=-1), eval_pred.label_ids
        else:
            predicted = document_logits(eval_pred.predictions, bounds).argmax(axis=-1)
            truth = val_set.document_label_ids
        return flat_metrics(classification_report(np.asarray(truth), predicted, labels.names))

    return compute


def build_trainer(model, args, tokenizer, train_set, val_set, labels: LabelSet, contract: ModelContract,
                  class_weights: list[float] | None = None, early_stopping_patience: int | None = None,
                  compute_metrics=None, compute_loss=None):
    """A Trainer that pads per batch, reports macro-F1, logs to stderr and stamps checkpoints.

    ``compute_metrics`` and ``compute_loss`` replace the single-label ones (multi-label and regression).
    """
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if args.fp16 or args.bf16 else None)
    trainer = _Trainer(model=model, args=args, data_collator=collator, train_dataset=train_set,
                      eval_dataset=val_set, processing_class=tokenizer,
                      compute_metrics=compute_metrics or compute_metrics_for(labels, val_set),
                      compute_loss_func=compute_loss or (_weighted_loss(class_weights) if class_weights else None))
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not args.disable_tqdm:
        trainer.add_callback(_QuietProgress())
    trainer.add_callback(_LogCallback())
    trainer.add_callback(_ContractCallback(contract))
    if early_stopping_patience:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    if _one_cpu_process(args):
        from .levers import keep_embedding_gradient

        undo = keep_embedding_gradient(model)
        if undo is not None:
            logger.debug("the word-embedding gradient is kept in one buffer (m3cls.training.levers)")
            trainer.add_callback(_UndoAtEnd(undo))
            trainer.m3cls_undo = [undo]  # also called by train_interruptibly when training raises
    return trainer


def _one_cpu_process(args) -> bool:
    """One process on the CPU: no DDP, DeepSpeed or FSDP wraps the model, and memory is the CPU's. The device the
    Trainer chose, not "no CUDA": an Apple GPU (MPS) or XPU has no CUDA either. Not with ``--torch_compile``:
    inductor cannot compile the sparse embedding backward and breaks the graph (measured: every frame)."""
    on_cpu = args.device.type == "cpu"
    return on_cpu and args.world_size <= 1 and not args.deepspeed and not args.fsdp and not args.torch_compile


class _UndoAtEnd(TrainerCallback):
    """Turns a training lever off when training ends (the model is used for prediction after)."""

    def __init__(self, undo):
        self.undo = undo

    def on_train_end(self, args, state, control, **kwargs):
        self.undo()


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


class _ContractCallback(TrainerCallback):
    """Writes m3cls.json into each checkpoint, so ``predict --model_path checkpoint-N`` reads text as training did."""

    def __init__(self, contract: ModelContract):
        self.contract = contract

    def on_save(self, args, state, control, **kwargs):
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if state.is_world_process_zero and os.path.isdir(folder):
            model = kwargs.get("model")
            if model is not None and hasattr(model, "get_base_model"):  # LoRA: keep the labels with the adapter
                model.get_base_model().config.save_pretrained(folder)
            write_contract(folder, self.contract.with_info(checkpoint_step=state.global_step))

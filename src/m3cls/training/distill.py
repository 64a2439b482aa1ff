"""``m3cls distill``: a small student learns a large teacher's probabilities, for a model that serves faster.

- **teacher**: any m3cls model folder (fine-tuned, LoRA, probe, ONNX export). Its raw logits for every text are
  computed once, in batches with a progress bar, and kept in the cache folder per teacher and data.
- **student**: ``--student bundled|PATH`` (its own tokenizer and architecture, a new head), or
  ``--student_layers K``: the teacher's own encoder keeping K evenly spaced layers (layer ``(i+1)*N/K - 1`` for
  ``i < K`` of N, so the last layer stays; DistilBERT's initialisation), with the teacher's head where it has
  one. With both, the K layers come from ``--student``, which must read text with the teacher's tokenizer.
- **targets** (:func:`soft_targets`): single-label, the teacher's softmax at temperature T, learnt by KL
  divergence at T (scaled by T², Hinton et al. 2015); multi-label, each label's sigmoid at T, learnt by binary
  cross-entropy; regression, the teacher's (standardised) values, learnt by MSE. A record that carries a label
  mixes it in: ``target = (1 - w) * teacher + w * label`` with ``w = --label_weight``.
- **the folder** is a normal m3cls model: the teacher's labels, task, read options and decision rule; its own
  temperature (and multi-label thresholds) re-fitted on the student's validation split, scored against the
  given labels when every validation record has one, else against the teacher's decisions. The card names the
  teacher.

The run itself is :func:`m3cls.training.distill_run.distill`.

Example::

    >>> kept_layers(12, 3)
    [3, 7, 11]
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..tasks import get_task

logger = logging.getLogger(__name__)


@dataclass
class DistillSettings:
    """The distillation flags (beside every training flag)."""

    teacher: str = field(default=None, metadata={"help": "The teacher: an m3cls model folder (fine-tuned, LoRA, "
                                                         "probe or ONNX export)."})
    student: str | None = field(default=None, metadata={
        "help": "The student: 'bundled' (the packaged MiniLM) or a model folder or Hub name; with "
                "--student_layers, the model whose layers are kept (default: the teacher)."})
    student_layers: int | None = field(default=None, metadata={
        "help": "Initialise the student from the teacher's encoder keeping this many evenly spaced layers."})
    distill_temperature: float = field(default=2.0, metadata={
        "help": "Softmax (sigmoid) temperature of the teacher's and the student's outputs in the loss."})
    label_weight: float = field(default=0.0, metadata={
        "help": "Weight (0 to 1) of a record's own label, where it has one, mixed into the teacher's target."})

    def check(self) -> None:
        if not self.teacher:
            raise ConfigError("--teacher is required: the m3cls model folder to distil")
        if not os.path.isdir(self.teacher):
            raise ConfigError(f"--teacher {self.teacher}: no such folder; give a folder written by 'm3cls train'")
        if self.student is None and self.student_layers is None:
            raise ConfigError("give --student bundled|PATH or --student_layers K (K layers of the teacher)")
        if self.student_layers is not None and self.student_layers < 1:
            raise ConfigError(f"--student_layers {self.student_layers} must be at least 1")
        if not (math.isfinite(self.distill_temperature) and self.distill_temperature > 0):
            raise ConfigError(f"--distill_temperature {self.distill_temperature} must be a number above 0")
        if not 0.0 <= self.label_weight <= 1.0:
            raise ConfigError(f"--label_weight {self.label_weight} must be between 0 and 1")


def kept_layers(total: int, keep: int) -> list[int]:
    """``keep`` evenly spaced layer indices of ``total``, ending with the last: ``(i + 1) * total // keep - 1``."""
    if keep > total:
        raise ConfigError(f"--student_layers {keep}: the model has only {total} layers")
    return [(i + 1) * total // keep - 1 for i in range(keep)]


def shrink_layers(model, keep: int) -> list[int]:
    """Keep ``keep`` evenly spaced layers of a BERT-like encoder in place; returns the kept indices."""
    import torch

    encoder = getattr(model.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(f"--student_layers works on BERT-like encoders (encoder.layer); "
                          f"{type(model.base_model).__name__} has none: use --student PATH instead")
    chosen = kept_layers(len(layers), keep)
    encoder.layer = torch.nn.ModuleList([layers[i] for i in chosen])
    for position, layer in enumerate(encoder.layer):  # attention caches index layers by position
        attention = getattr(getattr(layer, "attention", None), "self", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position
    model.config.num_hidden_layers = keep
    return chosen


def soft_targets(task: str, logits: np.ndarray, temperature: float, given: list, names: tuple[str, ...],
                 weight: float, scale: tuple[float, float]) -> np.ndarray:
    """What the student learns per text (see the module docstring); ``given`` holds None where no label."""
    kind = get_task(task)
    target = kind.soft_targets(logits, temperature)
    if weight > 0:
        for row, label in enumerate(given):
            if label is not None:
                target[row] = (1 - weight) * target[row] + weight * np.asarray(kind.hard_target(label, names, scale))
    return target.astype(np.float32)


def distill_loss(task: str, temperature: float):
    """The Trainer's compute_loss for the task's :attr:`~m3cls.tasks.base.Task.distill_target`: KL at T
    (x T²) on softmax targets, BCE on soft sigmoid targets at T (x T²), or MSE on values."""
    import torch.nn.functional as F

    def kl(logits, labels):
        log_p = F.log_softmax(logits / temperature, dim=-1)
        return F.kl_div(log_p, labels, reduction="batchmean") * temperature ** 2

    losses = {"softmax": kl,
              "sigmoid": lambda logits, labels: F.binary_cross_entropy_with_logits(logits / temperature, labels)
              * temperature ** 2,
              "value": lambda logits, labels: F.mse_loss(logits.reshape(labels.shape), labels)}
    chosen = losses[get_task(task).distill_target]

    def loss(outputs, labels, num_items_in_batch=None):
        return chosen(outputs["logits"].float(), labels.float())

    return loss


def teacher_decisions(task: str, contract, logits: np.ndarray) -> list:
    """The teacher's own decision per text, in the task's label form (what validation scores against when the
    data has no labels)."""
    return get_task(task).decisions(logits, contract)


def teacher_logits(teacher: str, texts: list[str], cache_dir: str | None, batch_size: int = 64,
                   device: str = "auto") -> np.ndarray:
    """The teacher's raw logits for ``texts``, in batches with a progress bar, kept per teacher and data."""
    from ..probe.cache import cached_result, data_digest
    from ..probe.embeddings import model_fingerprint

    def compute() -> dict:
        import sys

        from tqdm import tqdm

        from ..inference.classifier import Classifier

        names = os.listdir(teacher)
        onnx = "model.onnx" in names and not any(n.endswith(".safetensors") for n in names)
        clf = Classifier.from_pretrained(teacher, device=device, batch_size=batch_size,
                                         backend="onnx" if onnx else "torch")
        rows, block = [], batch_size * 8
        with tqdm(total=len(texts), desc="teacher", unit="text", file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            for start in range(0, len(texts), block):
                rows.append(clf.logits(texts[start: start + block]))
                bar.update(len(rows[-1]))
                logger.info("teacher: %d/%d texts", min(start + block, len(texts)), len(texts))
        return {"logits": np.concatenate(rows).astype(np.float64).tolist()}

    inputs = lambda: {"teacher": model_fingerprint(teacher), "texts": data_digest(texts)}  # noqa: E731
    result, kept = cached_result(cache_dir, "distill-teacher", inputs, compute)
    if kept:
        logger.info("teacher outputs: read from the cache (same teacher and texts)")
    return np.asarray(result["logits"], dtype=np.float64)

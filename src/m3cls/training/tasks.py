"""What training builds from its task's hooks (:meth:`m3cls.tasks.Task.training_hooks`): the Trainer's
``compute_metrics``, and the weighted binary cross-entropy a multi-label run asks for with a ``pos_weight`` per
label (the one torch piece a task cannot build itself: ``tasks/`` stays free of torch).
"""

from __future__ import annotations

from ..tasks import get_task
from ..tasks.labels import LabelSet
from ..tasks.targets import TargetScale


def trainer_hooks(task: str, class_weights: str, targets: list, labels: LabelSet,
                  scale: TargetScale | None) -> dict:
    """``compute_metrics`` and ``compute_loss`` for the Trainer; empty when the task keeps the defaults."""
    hooks = get_task(task).training_hooks(class_weights, targets, labels, scale)
    if not hooks:
        return {}
    weights = hooks.get("pos_weight")
    return {"compute_metrics": hooks["compute_metrics"],
            "compute_loss": weighted_bce(weights) if weights is not None else None}


def weighted_bce(weights: list[float]):
    """Binary cross-entropy with a pos_weight per label, summed and divided by the items in the batch."""
    import torch

    pos_weight = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"].float()
        total = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.float(), pos_weight=pos_weight.to(logits.device), reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return total / count

    return loss


def task_summary(task: str, metrics: dict) -> dict:
    """The scores ``m3cls train`` prints on its one JSON line."""
    return {k: round(metrics[k], 4) for k in get_task(task).summary_keys}

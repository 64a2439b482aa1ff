"""``m3cls distill``: train a small student on a teacher's probabilities (:mod:`m3cls.training.distill`)."""

from __future__ import annotations

import json
import logging

from .common import parse_train_args, train_parser

logger = logging.getLogger("m3cls")


DESCRIPTION = (
        "Distil a teacher model (--teacher, any m3cls model folder) into a smaller, faster student (--student "
        "bundled|PATH, or --student_layers K: the teacher's own encoder with K evenly spaced layers) on the "
        "texts of --data_path (labels optional): KL divergence to the teacher's softmax at "
        "--distill_temperature (multi-label: per-label sigmoid targets; regression: the teacher's values). "
        "The teacher's outputs are computed once and cached. Takes every 'm3cls train' flag.")


def distill_parser():
    from ..training.distill import DistillSettings

    return train_parser((DistillSettings,), "m3cls distill", DESCRIPTION)


def cmd_distill(argv: list[str]) -> int:
    from ..inference import distributed
    from ..training.distill import DistillSettings
    from ..training.distill_run import distill
    from ..training.tasks import task_summary

    request, (settings,) = parse_train_args(argv, (DistillSettings,), "m3cls distill", DESCRIPTION)
    result = distill(request, settings=settings)
    distributed.finish()
    info = result.contract.info
    print(json.dumps({"output_dir": result.output_dir, "teacher": settings.teacher,
                      "scored_against": info["scored_against"],
                      **task_summary(result.contract.task, result.metrics)}))
    return 0

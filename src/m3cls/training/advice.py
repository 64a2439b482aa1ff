"""One line of advice where a run's own numbers say it needs one (issue 23): small data, and a probe that beats
fine-tuning.

A person training on 40 texts gets 3 validation texts, a few optimizer steps and near-uniform probabilities,
and nothing said so. These functions read the run's counts and ladder and return the warning lines (or none);
the training run logs them. They never change what is trained.

Example::

    >>> small_validation(3)[:44]
    'validation has only 3 texts, so its scores m'
    >>> small_validation(400) is None
    True
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..metrics.sample_size import MIN_SCORED, too_few
from ..tasks import get_task

#: fewer validation texts than this, and the validation scores mean little (the reports use the same threshold)
MIN_VALIDATION = MIN_SCORED
#: fewer training texts than this in a class, and fine-tuning has little to learn it from
MIN_CLASS = 20
#: the probe's macro-F1 above fine-tuning's by more than this, and fine-tuning did not pay
PROBE_MARGIN = 0.01


def small_validation(count: int) -> str | None:
    """A warning when validation is too small for its scores to mean much."""
    return too_few(count, "validation", f" and so do the checkpoint choice and the temperature fitted on them; "
                                        f"give a --validation_path of {MIN_VALIDATION} or more texts, or score "
                                        f"with 'm3cls cv'")


def small_classes(label_ids: Iterable, names: tuple[str, ...]) -> str | None:
    """A warning naming the classes with fewer than ``MIN_CLASS`` training texts (single-label ids)."""
    counts = Counter(int(i) for i in label_ids)
    few = [(names[i], counts.get(i, 0)) for i in range(len(names)) if counts.get(i, 0) < MIN_CLASS]
    if not few:
        return None
    listed = ", ".join(f"{name} {n}" for name, n in few)
    return (f"classes with fewer than {MIN_CLASS} training texts ({listed}): fine-tuning has little to learn them "
            f"from; --method probe fits such data in seconds, and fine-tuning needs more epochs "
            f"(--num_train_epochs) or a higher --learning_rate to move at all")


def probe_beats_finetune(ladder: list[dict], steps: int | None) -> str | None:
    """Advice when the ladder's probe rung scored above fine-tuning on the same validation split."""
    rungs = {r["rung"]: r for r in ladder}
    probe, tuned = rungs.get("probe"), rungs.get("finetune")
    if not probe or not tuned or probe["macro_f1"] <= tuned["macro_f1"] + PROBE_MARGIN:
        return None
    made = f" in {steps} optimizer steps" if steps else ""
    return (f"the probe (macro-F1 {probe['macro_f1']:.4f}, {probe['seconds']:.0f} s) beat fine-tuning (macro-F1 "
            f"{tuned['macro_f1']:.4f}{made}) on the same validation split: use --method probe, or fine-tune "
            f"longer (--num_train_epochs) or with a higher --learning_rate")


def data_advice(task: str, train_label_ids, validation_count: int, names: tuple[str, ...]) -> list[str]:
    """The small-data warnings for a run: validation size, and class sizes where classes are single labels."""
    lines = [small_validation(validation_count)]
    if get_task(task).one_label_per_text:  # class counts read one label id per text
        lines.append(small_classes(train_label_ids, names))
    return [line for line in lines if line]

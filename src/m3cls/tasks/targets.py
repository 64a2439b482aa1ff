"""Task types: one label per text (single_label), a set of labels (multi_label), or a number (regression).

The readers in :mod:`m3cls.data.readers` hand labels over as they found them: a label name (``str``), a list of names
(``tuple``, from a JSON list or a ``--label_separator`` string), or a JSON number (``float``). This module
decides the task (``auto``: any list means multi-label; regression is never guessed), checks every label
against it with one line naming the record and the fix, builds the label set, splits off validation data,
and turns labels into training targets. No torch here.

Example::

    >>> from m3cls.tasks.targets import resolve_task, normalize_labels
    >>> resolve_task("auto", [("politics", "economy"), ()], "train.json")
    'multi_label'
    >>> normalize_labels("multi_label", ["sport", ("sport", "politics")], "train.json")
    [('sport',), ('sport', 'politics')]
    >>> normalize_labels("regression", ["3.5", 2.0], "train.json")
    [3.5, 2.0]
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Union

import numpy as np

from ..errors import ConfigError, DataError
from . import REGISTRY
from .labels import LabelSet, _sort_key

TASKS = tuple(REGISTRY)
TASK_CHOICES = ("auto",) + TASKS
#: the Hugging Face ``config.problem_type`` of each task, so plain transformers computes the right loss
PROBLEM_TYPES = {name: task.problem_type for name, task in REGISTRY.items()}
#: the one output name of a regression model (``config.json``'s ``id2label``)
REGRESSION_LABEL = "value"
Label = Union[str, tuple, float]


def single_label_only(task: str, what: str) -> None:
    """Refuse a multi-label or regression run in a command that handles single-label data only (``what``)."""
    if task != "single_label":
        raise ConfigError(f"{what} handles single-label data only, and this is a {task} run; train it with "
                          f"'m3cls train --method finetune --task {task}' and score it with 'm3cls evaluate'")


def task_of_problem_type(problem_type: str | None) -> str:
    """The task of a plain transformers classifier folder, from its ``config.problem_type``."""
    return {v: k for k, v in PROBLEM_TYPES.items()}.get(problem_type or "", "single_label")


def label_list(value: object, where: str, what: str, separator: str | None) -> tuple[str, ...]:
    """A JSON list of label names, or a ``separator``-delimited string, as a tuple of names (may be empty)."""
    if isinstance(value, str):
        parts = value.split(separator) if separator else [value]
        return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    names = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise DataError(f"{where}: label {what} is a list holding {item!r}; a label list holds non-empty "
                            f"label names such as [\"politics\", \"economy\"]")
        names.append(item.strip())
    return tuple(dict.fromkeys(names))


def _record(index: int) -> str:
    return f"record {index + 1}"


def resolve_task(requested: str, labels: list[Label], source: str) -> str:
    """The task of a run: the one asked for, or for ``auto`` multi-label when labels are lists, else single-label."""
    if requested not in TASK_CHOICES:
        raise ConfigError(f"--task {requested!r} is not one of: {', '.join(TASK_CHOICES)}")
    lists = [i for i, label in enumerate(labels) if isinstance(label, tuple)]
    if requested != "auto":
        task = requested
    elif not lists:
        task = "single_label"
    elif len(lists) < len(labels):
        plain = next(i for i, label in enumerate(labels) if not isinstance(label, tuple))
        raise DataError(f"{source}: {_record(plain)} has the single label {labels[plain]!r} while "
                        f"{_record(lists[0])} has a label list; pass --task multi_label to read a single label "
                        f"as a one-label list, or make every label a list")
    else:
        task = "multi_label"
    if task == "single_label":
        normalize_labels(task, labels, source)  # fails on the first list or number, with the fix
    return task


def normalize_labels(task: str, labels: list[Label], source: str) -> list:
    """Every label in the task's form: a name, a tuple of names, or a finite float; one line per problem."""
    return [_normalize(task, label, source, i) for i, label in enumerate(labels)]


def _normalize(task: str, label: Label, source: str, index: int):
    return normalize_label(task, label, f"{source}: {_record(index)}")


def normalize_label(task: str, label: Label, where: str):
    """One label in the task's form; a label that does not fit is one line naming ``where`` (the record)."""
    if task == "single_label":
        if isinstance(label, tuple):
            raise DataError(f"{where} has the label list {list(label)!r}, but this is a single-label run; pass "
                            f"--task multi_label to train on label sets")
        if isinstance(label, float):
            raise DataError(f"{where} has the number {label!r} as its label; to predict numbers pass --task "
                            f"regression, or give label names")
        return label
    if task == "multi_label":
        if isinstance(label, float):
            raise DataError(f"{where} has the number {label!r} as its label; a multi-label run needs label "
                            f"names or lists of them")
        return label if isinstance(label, tuple) else (label,)
    if isinstance(label, tuple):
        raise DataError(f"{where} has the label list {list(label)!r}, but this is a regression run; give one "
                        f"number per record")
    return _target(label, where)


def _target(label: str | float, where: str) -> float:
    try:
        value = float(label)
    except (TypeError, ValueError):
        raise DataError(f"{where} has the target {label!r}, which is not a number; regression needs a number "
                        f"such as 3.5 in every record -- fix the record, or drop --task regression") from None
    if not math.isfinite(value):
        raise DataError(f"{where} has the target {label!r}, which is not a finite number; give a real number "
                        f"or remove the record")
    return value


def discover_labels(task: str, labels: list, source: str, fixed: list[str] | None = None) -> LabelSet:
    """The label set and order: single-label as :meth:`LabelSet.discover`; multi-label the union of all sets."""
    if task == "single_label":
        return LabelSet.discover(labels, source, fixed)
    if task == "regression":
        if fixed is not None:
            raise ConfigError("--labels names classes; a regression model has one number as output -- drop "
                              "--labels")
        return LabelSet((REGRESSION_LABEL,))
    seen = {name for names in labels for name in names}
    if fixed is None:
        if not seen:
            raise DataError(f"{source}: all {len(labels)} label lists are empty; a multi-label classifier needs "
                            f"at least one label in some record")
        return LabelSet(tuple(sorted(seen, key=_sort_key)))
    names = [n.strip() for n in fixed if n.strip()]
    if not names or len(set(names)) < len(names):
        raise ConfigError(f"--labels {','.join(fixed)!r}: give each label name once, separated by commas")
    for index, label in enumerate(labels):
        unknown = [n for n in label if n not in names]
        if unknown:
            raise DataError(f"{source}: {_record(index)} has label {unknown[0]!r}, which is not in --labels "
                            f"({', '.join(names)}); add it to --labels")
    missing = [n for n in names if n not in seen]
    if missing:
        raise ConfigError(f"--labels entry {missing[0]!r} matches no label in {source}; fix the spelling or "
                          f"remove it")
    return LabelSet(tuple(names))


def check_known(task: str, label_set: LabelSet, labels: list, source: str, train_source: str) -> None:
    """Refuse a validation or evaluation label the model never saw in training."""
    if task == "regression":
        return
    if task == "single_label":
        label_set.encode(labels, source, train_source)
        return
    known = set(label_set.names)
    for index, names in enumerate(labels):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DataError(f"{source}: {_record(index)} has label {unknown[0]!r}, which never appears in "
                            f"{train_source} (known labels: {', '.join(label_set.names)}); fix the label or add "
                            f"such records to the training data")


def multi_hot(labels: list[tuple[str, ...]], label_set: LabelSet) -> np.ndarray:
    """A 0/1 matrix, one row per text and one column per label (labels already checked as known)."""
    index = label_set.label2id
    out = np.zeros((len(labels), len(label_set)), dtype=np.int64)
    for row, names in enumerate(labels):
        out[row, [index[n] for n in names]] = 1
    return out


@dataclass(frozen=True)
class TargetScale:
    """Regression targets are learnt standardised, ``(y - mean) / std``, and given back in their own units."""

    mean: float
    std: float

    @classmethod
    def fit(cls, values: list[float], source: str) -> "TargetScale":
        array = np.asarray(values, dtype=np.float64)
        std = float(array.std())
        if not std > 0:
            raise DataError(f"{source}: every training target is {array[0]:g}; regression needs targets that "
                            f"vary")
        return cls(float(array.mean()), std)

    def standardise(self, values) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def original(self, values) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


def training_targets(task: str, labels: list, label_set: LabelSet, scale: TargetScale | None,
                     source: str, train_source: str = "the training data") -> list:
    """What the Trainer learns: class ids, multi-hot float rows, or standardised numbers."""
    if task == "single_label":
        return label_set.encode(labels, source, train_source)
    if task == "multi_label":
        check_known(task, label_set, labels, source, train_source)
        return multi_hot(labels, label_set).astype(np.float32).tolist()
    return scale.standardise(labels).tolist()


def label_counts(task: str, labels: list) -> dict:
    """Records per label (a text counts once for each label it carries); regression: target statistics."""
    if task == "regression":
        array = np.asarray(labels, dtype=np.float64)
        return {"mean": float(array.mean()), "std": float(array.std()), "min": float(array.min()),
                "max": float(array.max())}
    counted = Counter(n for names in labels for n in names) if task == "multi_label" else Counter(labels)
    return dict(sorted(counted.items()))

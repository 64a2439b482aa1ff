"""Validation splits for every task, reproducible for a seed.

- single-label: every class in proportion (:func:`m3cls.data.stratified_split`);
- multi-label: iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011): the rarest label is placed
  first, each of its texts going to the side that still wants most of that label, so every label, rare ones
  included, is held out close to the asked share. A label seen in only one text stays in training, and any
  validation text whose label ended up absent from training moves back, so validation holds only known labels;
- regression: the texts sorted by target are cut into as many equal strata as validation texts, and one
  text is drawn from each, so validation spans the whole range of targets.

Example::

    >>> from m3cls.splits import iterative_split
    >>> sets = [("a",), ("a", "b"), ("b",), ("a",), ("c",), ("a", "c"), ("b",), ()] * 5
    >>> train, val = iterative_split(sets, 0.25, seed=0)
    >>> len(val), sorted({n for i in val for n in sets[i]})
    (10, ['a', 'b', 'c'])
"""

from __future__ import annotations

import random

import numpy as np

from .data import TextData, stratified_split
from .errors import ConfigError, DataError

#: how each task's validation split is drawn (recorded in m3cls.json)
SPLIT_METHODS = {"single_label": "stratified", "multi_label": "iterative stratification",
                 "regression": "stratified by target"}


def split_for_task(task: str, data: TextData, fraction: float, seed: int) -> tuple[TextData, TextData]:
    """Split off ``fraction`` of ``data`` for validation the task's way (see the module docstring)."""
    if task == "single_label":
        return stratified_split(data, fraction, seed)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--validation_split {fraction} must be between 0 and 1 (for example 0.1)")
    if task == "multi_label":
        train, held_out = iterative_split(data.labels, fraction, seed)
    else:
        train, held_out = quantile_split(data.labels, fraction, seed)
    if not held_out or not train:
        raise DataError(f"{data.path}: too few records to split off a validation set ({len(data)} records); "
                        f"add data or give --validation_path")
    return data.subset(train), data.subset(held_out, f"{data.path} (validation split)")


def iterative_split(label_sets: list[tuple[str, ...]], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices) by iterative stratification; both sorted."""
    rng = random.Random(seed)
    shares = (1.0 - fraction, fraction)
    counts: dict[str, int] = {}
    for names in label_sets:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    wanted = [{name: n * share for name, n in counts.items()} for share in shares]
    total = [len(label_sets) * share for share in shares]
    side = [-1] * len(label_sets)
    members: dict[str, list[int]] = {name: [] for name in counts}
    for i, names in enumerate(label_sets):
        for name in names:
            members[name].append(i)
    unplaced = dict(counts)  # per label, its texts not yet placed
    while members:
        label = min(members, key=lambda n: (unplaced[n], n))  # the rarest label still to place
        items = [i for i in members.pop(label) if side[i] < 0]
        rng.shuffle(items)
        for i in items:
            choice = _best_side(wanted, total, label, rng)
            side[i] = choice
            total[choice] -= 1
            for name in label_sets[i]:
                wanted[choice][name] -= 1
                unplaced[name] -= 1
    for i in range(len(label_sets)):  # texts without labels
        if side[i] < 0:
            choice = max((0, 1), key=lambda s: (total[s], rng.random()))
            side[i] = choice
            total[choice] -= 1
    in_train = {n for i, names in enumerate(label_sets) if side[i] == 0 for n in names}
    for i, names in enumerate(label_sets):
        if side[i] == 1 and not set(names) <= in_train:
            side[i] = 0
            in_train.update(names)
    return [i for i, s in enumerate(side) if s == 0], [i for i, s in enumerate(side) if s == 1]


def _best_side(wanted: list[dict], total: list[float], label: str, rng: random.Random) -> int:
    """The side that still wants most of ``label``; ties go to the side wanting most texts, then by chance."""
    return max((0, 1), key=lambda s: (wanted[s][label], total[s], rng.random()))


def quantile_split(targets: list[float], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices): one validation text drawn from each of k target strata."""
    k = max(1, round(len(targets) * fraction)) if len(targets) > 1 else 0
    order = np.argsort(np.asarray(targets, dtype=np.float64), kind="stable")
    rng = random.Random(seed)
    held_out = sorted(int(rng.choice(stratum)) for stratum in np.array_split(order, k)) if k else []
    chosen = set(held_out)
    return [i for i in range(len(targets)) if i not in chosen], held_out

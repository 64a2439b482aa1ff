"""Validation splits for every task, and the folds of cross-validation; reproducible for a seed.

- single-label: every class in proportion (:func:`m3cls.data.readers.stratified_split`);
- multi-label: iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011): the rarest label is placed
  first, each of its texts going to the side that still wants most of that label, so every label, rare ones
  included, is held out close to the asked share. A label seen in only one text stays in training, and any
  validation text whose label ended up absent from training moves back, so validation holds only known labels;
- regression: the texts sorted by target are cut into as many equal strata as validation texts, and one
  text is drawn from each, so validation spans the whole range of targets.

Records sharing a group (``--group_column``: a source document, an author, a paper and its LLM rewrites) stay
on one side of every split, so near-copies cannot make validation scores look better than they are:
single-label uses one fold of scikit-learn's stratified group k-fold; multi-label and regression hold out
whole groups drawn at random.

Example::

    >>> from m3cls.data.splits import fold_indices, iterative_split
    >>> sets = [("a",), ("a", "b"), ("b",), ("a",), ("c",), ("a", "c"), ("b",), ()] * 5
    >>> train, val = iterative_split(sets, 0.25, seed=0)
    >>> len(val), sorted({n for i in val for n in sets[i]})
    (10, ['a', 'b', 'c'])
    >>> folds = fold_indices(["a", "b"] * 5, None, 5, seed=0, source="d.json")
    >>> sorted(len(f) for f in folds)
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from ..errors import ConfigError, DataError
from ..tasks import get_task
from .readers import TextData, stratified_split


def split_for_task(task: str, data: TextData, fraction: float, seed: int) -> tuple[TextData, TextData]:
    """Split off ``fraction`` of ``data`` for validation the task's way (see the module docstring)."""
    splitter = get_task(task).splitter
    if splitter == "stratified" or data.groups is not None:
        return group_split(data, fraction, seed, task)  # stratified when there are no groups
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--validation_split {fraction} must be between 0 and 1 (for example 0.1)")
    train, held_out = SPLITTERS[splitter](data.labels, fraction, seed)
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


def fold_indices(labels: list[str], groups: list[str] | None, k: int, seed: int, source: str) -> list[np.ndarray]:
    """The held-out record positions of each of ``k`` stratified (and, with groups, grouped) folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"--folds {k}: cross-validation needs at least 2 folds (5 is usual)")
    counts = Counter(labels)
    if groups is None:
        smallest, n = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if k > n:
            raise ConfigError(f"--folds {k}: class {smallest!r} in {source} has only {n} record(s), too few to "
                              f"appear in every fold; use --folds {max(2, n)} or fewer, or add records")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(labels)), labels)
    else:
        distinct = len(set(groups))
        if k > distinct:
            raise ConfigError(f"--folds {k}: {source} has only {distinct} group(s) in --group_column, and each "
                              f"fold needs at least one; use --folds {max(2, distinct)} or fewer")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(labels)), labels, groups)
    folds = [np.sort(test) for _, test in parts]
    if any(len(f) == 0 for f in folds):
        raise DataError(f"{source}: a fold came out empty; use fewer --folds")
    return folds


def group_split(data: TextData, fraction: float, seed: int,
                task: str = "single_label") -> tuple[TextData, TextData]:
    """Hold out about ``fraction`` of the records, whole groups at a time.

    Single-label keeps classes balanced with one fold of a stratified group k-fold, k = round(1 / fraction), so
    the held-out share is 1/k. Multi-label and regression hold out groups in a seeded random order until the
    share is reached. Without groups this is the task's own split.
    """
    stratified = get_task(task).splitter == "stratified"
    if data.groups is None:
        return stratified_split(data, fraction, seed) if stratified else split_for_task(task, data, fraction, seed)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--validation_split {fraction} must be between 0 and 1 (for example 0.1)")
    k = max(2, round(1 / fraction))
    if len(set(data.groups)) < 2:
        raise DataError(f"{data.path}: every record is in the same group, so no validation set can be split off "
                        f"by --group_column; give --validation_path or more groups")
    k = min(k, len(set(data.groups)))
    if stratified:
        held = set(fold_indices(data.labels, data.groups, k, seed, data.path)[0].tolist())
    else:
        held = _random_groups(data.groups, fraction, seed)
    train = [i for i in range(len(data)) if i not in held]
    classes_in = get_task(task).classes_in
    missing = classes_in(data.labels) - classes_in([data.labels[i] for i in train])
    if missing:
        raise DataError(f"{data.path}: with --group_column, every record of class {sorted(missing)[0]!r} fell in "
                        f"the validation groups; give --validation_path or more groups for that class")
    return data.subset(train), data.subset(sorted(held), f"{data.path} (validation split by group)")


def _random_groups(groups: list[str], fraction: float, seed: int) -> set[int]:
    """Record positions of whole groups, drawn in a seeded order until about ``fraction`` of records is held out
    (at least one group, never all of them)."""
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    held: set[int] = set()
    for group in order[:-1]:
        if held and len(held) + len(members[group]) / 2 > fraction * len(groups):
            break
        held.update(members[group])
    return held


def holdout_folds(values: list[str], labels: list[str], groups: list[str] | None, background: set[str],
                  seed: int, source: str, column: str) -> tuple[list[str], list[np.ndarray]]:
    """Leave-one-group-out test sets: for each value of ``column`` (except the ``background`` ones), the
    positions of its records plus one stratified (and, with groups, grouped) fold of the background records,
    so every test has the background's classes too. The test sets are disjoint and cover every record.

    Returns the held-out values (sorted) and each one's test positions.
    """
    held = sorted(set(values) - background)
    missing = sorted(background - set(values))
    if missing:
        raise ConfigError(f"--background_groups {', '.join(missing)}: no record of {source} has that {column!r} "
                          f"value (values: {', '.join(sorted(set(values))[:20])})")
    if len(held) < 2:
        raise DataError(f"{source}: --holdout_group {column} has {len(held)} value(s) to hold out; leave-one-group-"
                        f"out needs at least 2 (a model must see one while another is held out)")
    back = np.array([i for i, v in enumerate(values) if v in background], dtype=int)
    parts = [np.array([], dtype=int)] * len(held)
    if len(back):
        sub = fold_indices([labels[i] for i in back], None if groups is None else [groups[i] for i in back],
                           len(held), seed, f"{source} (background {', '.join(sorted(background))})")
        parts = [back[f] for f in sub]
    folds = []
    for value, extra in zip(held, parts):
        own = np.array([i for i, v in enumerate(values) if v == value], dtype=int)
        if len({labels[i] for i in own}) < 2 and not len(extra):
            raise DataError(f"{source}: held-out {column} value {value!r} has only label {labels[own[0]]!r} and "
                            f"there is no background to score it against; name the values of the other class "
                            f"with --background_groups (e.g. --background_groups human)")
        folds.append(np.sort(np.r_[own, extra]))
    return held, folds


#: the validation splitters a task names (``Task.splitter``) beside "stratified", which group_split draws
SPLITTERS = {"iterative": iterative_split, "binned": quantile_split}

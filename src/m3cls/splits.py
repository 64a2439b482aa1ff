"""Splits that respect groups, and the folds of cross-validation (scikit-learn's stratified splitters).

Records sharing a group (``--group_column``: a source document, an author, a paper and its LLM rewrites) stay
on one side of every split, so near-copies cannot make validation scores look better than they are.

Example::

    >>> folds = fold_indices(["a", "b"] * 5, None, 5, seed=0, source="d.json")
    >>> sorted(len(f) for f in folds)
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .data import TextData, stratified_split
from .errors import ConfigError, DataError


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


def group_split(data: TextData, fraction: float, seed: int) -> tuple[TextData, TextData]:
    """Hold out about ``fraction`` of the records, whole groups at a time, keeping classes balanced.

    Uses one fold of a stratified group k-fold with k = round(1 / fraction), so the held-out share is 1/k.
    """
    if data.groups is None:
        return stratified_split(data, fraction, seed)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--validation_split {fraction} must be between 0 and 1 (for example 0.1)")
    k = max(2, round(1 / fraction))
    if len(set(data.groups)) < 2:
        raise DataError(f"{data.path}: every record is in the same group, so no validation set can be split off "
                        f"by --group_column; give --validation_path or more groups")
    k = min(k, len(set(data.groups)))
    held = set(fold_indices(data.labels, data.groups, k, seed, data.path)[0].tolist())
    train = [i for i in range(len(data)) if i not in held]
    missing = set(data.labels) - {data.labels[i] for i in train}
    if missing:
        raise DataError(f"{data.path}: with --group_column, every record of class {sorted(missing)[0]!r} fell in "
                        f"the validation groups; give --validation_path or more groups for that class")
    return data.subset(train), data.subset(sorted(held), f"{data.path} (validation split by group)")

"""The label audit: records whose label is likely wrong, most suspect first.

Three checks, on out-of-fold probabilities (every text scored by a model that never saw it) and embeddings:
- **label issues**: confident learning (Northcutt et al., 2021) through cleanlab's ``find_label_issues``
  (pruning by noise rate): a record is flagged when the model's out-of-fold confidence in another class exceeds
  that class's per-class threshold, as often as the estimated noise rate says;
- **conflicting duplicates**: identical texts (after folding case and white space) with different labels;
- **near-duplicate conflicts**: texts whose embedding cosine is at or above a threshold (0.95 by default,
  ``--near_duplicate_cosine``) among each text's 5 nearest neighbours, with different labels.

Every suspect gets ``score = 1 - p(given label)`` out of fold, so all kinds rank on one scale, and
``suggested_label``: the out-of-fold prediction, or for a duplicate whose prediction is its own label, the
label its twin carries.

Example::

    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.1, 0.9]])
    >>> suspects, _ = find_suspects(["a", "b", "same", "Same "], np.array([0, 1, 1, 0]), ("x", "y"), p)
    >>> [(s["index"], s["suggested_label"], s["reasons"]) for s in suspects]
    [(3, 'y', ['label_issue', 'conflicting_duplicate']), (2, 'x', ['conflicting_duplicate'])]
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..data.inspection import text_key
from ..errors import ConfigError
from ..files import require

logger = logging.getLogger(__name__)

NEIGHBOURS = 5


@dataclass
class AuditSettings:
    """The audit's own flags."""

    near_duplicate_cosine: float = field(default=0.95, metadata={
        "help": "Embedding cosine at or above which two texts count as near-duplicates (checked among each "
                "text's 5 nearest neighbours); pairs with different labels are suspects."})

    def check(self) -> None:
        if not 0.0 < self.near_duplicate_cosine <= 1.0:
            raise ConfigError(f"--near_duplicate_cosine {self.near_duplicate_cosine} must be above 0 and at most 1")


def label_issues(y: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Boolean mask of likely label errors by confident learning (cleanlab)."""
    require("cleanlab", "audit", "the label audit")
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(y, probabilities, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)


def conflicting_duplicates(texts: list[str]) -> dict[str, list[int]]:
    """Positions of identical texts (case and white space folded), per text: only groups of 2 or more."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(texts):
        groups[text_key(text)].append(index)
    return {k: v for k, v in groups.items() if len(v) > 1}


def near_duplicate_pairs(embeddings: np.ndarray, threshold: float, block: int = 1024) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose cosine is at least ``threshold``, among each text's nearest neighbours."""
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    pairs: dict[tuple[int, int], float] = {}
    k = min(NEIGHBOURS + 1, len(x))
    for start in range(0, len(x), block):
        sims = x[start: start + block] @ x.T
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for row, candidates in enumerate(nearest):
            i = start + row
            for j in candidates.tolist():
                if j != i and sims[row, j] >= threshold:
                    pairs[(min(i, j), max(i, j))] = float(sims[row, j])
    return [(i, j, s) for (i, j), s in sorted(pairs.items())]


def find_suspects(texts: list[str], y: np.ndarray, names: tuple[str, ...], probabilities: np.ndarray,
                  embeddings: np.ndarray | None = None, near_duplicate_cosine: float = 0.95) -> tuple[list, dict]:
    """(suspects most suspect first, summary counts) for records ``texts`` with label ids ``y``."""
    y = np.asarray(y)
    reasons: dict[int, list[str]] = defaultdict(list)
    related: dict[int, set[int]] = defaultdict(set)
    for index in np.flatnonzero(label_issues(y, probabilities)).tolist():
        reasons[index].append("label_issue")
    conflicts = 0
    for members in conflicting_duplicates(texts).values():
        if len({int(y[m]) for m in members}) > 1:
            conflicts += 1
            for m in members:
                reasons[m].append("conflicting_duplicate")
                related[m].update(set(members) - {m})
    pairs = near_duplicate_pairs(embeddings, near_duplicate_cosine) if embeddings is not None else []
    near_conflicts = 0
    for i, j, _ in pairs:
        if y[i] != y[j] and text_key(texts[i]) != text_key(texts[j]):
            near_conflicts += 1
            for a, b in ((i, j), (j, i)):
                if "near_duplicate_conflict" not in reasons[a]:
                    reasons[a].append("near_duplicate_conflict")
                related[a].add(b)
    suspects = [_suspect(i, texts, y, names, probabilities, reasons[i], related[i]) for i in reasons]
    suspects.sort(key=lambda s: (-s["score"], s["index"]))
    summary = {"records": len(texts), "suspects": len(suspects), "near_duplicate_cosine": near_duplicate_cosine,
               "near_duplicate_pairs": len(pairs),
               "counts": {"label_issues": sum("label_issue" in r for r in reasons.values()),
                          "conflicting_duplicate_groups": conflicts, "near_duplicate_conflicts": near_conflicts}}
    logger.info("audit: %d suspects among %d records (%s)", len(suspects), len(texts),
                ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["counts"].items()))
    return suspects, summary


def _suspect(index: int, texts, y, names, probabilities, why: list[str], others: set[int]) -> dict:
    given = int(y[index])
    suggested = int(probabilities[index].argmax())
    if suggested == given and others:  # a twin with another label: suggest that label
        votes = [int(y[o]) for o in others if int(y[o]) != given]
        suggested = max(set(votes), key=votes.count) if votes else given
    text = texts[index]
    return {"index": index, "given_label": names[given], "suggested_label": names[suggested],
            "score": round(1.0 - float(probabilities[index, given]), 6), "reasons": why,
            "probability_given": float(probabilities[index, given]),
            "probability_suggested": float(probabilities[index, suggested]),
            "related": sorted(others), "text": text[:100] + ("..." if len(text) > 100 else "")}

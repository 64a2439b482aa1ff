"""Which texts to label next: rank a pool of unlabelled texts by how much a label for each would teach the model.

Every strategy works on two arrays per pool text, the model's probabilities and the encoder's embedding:

- **uncertainty** ``u`` in [0, 1]: single-label, ``1 - margin`` where the margin is the gap between the two most
  probable classes (a 0.5/0.5 text scores 1, a 0.99/0.01 text 0.02); multi-label, the mean over labels of
  ``1 - |2p - 1|`` (1 when a label sits at 0.5, 0 when every label is sure). ``entropy`` (normalised to [0, 1])
  is reported beside it.
- **distance** ``d``: cosine distance (``1 - cos``) from a text to the nearest text already labelled, excluded
  or chosen earlier in this round; 1 when nothing is labelled yet.

Strategies (each output line says which numbers made its ``score``):

- ``uncertainty``: by ``u``, highest first;
- ``diversity``: k-center greedy: repeatedly the text farthest from every labelled and chosen text (``d``);
- ``hybrid`` (the default): uncertainty-weighted k-center greedy: repeatedly the text with the highest
  ``u * d``, ``d`` updated after each choice. A text identical to one already chosen has ``d = 0`` and is not
  chosen again while any other text scores above 0, so a round never spends two labels on one text;
- ``random``: a seeded shuffle (the baseline every benchmark compares against);
- ``disagreement``: for several annotators, ``(a + u) / 2``, where ``a`` is the annotators' disagreement on the
  text (``1 -`` the share of the most frequent label, divided by its largest possible value ``1 - 1/k`` for k
  classes; 0 when it has fewer than 2 annotations).

Example::

    >>> import numpy as np
    >>> p = np.array([[0.99, 0.01], [0.5, 0.5], [0.5, 0.5]])
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> [c.index for c in rank(p, x, "hybrid", 2)]      # the uncertain text, then not its twin
    [1, 0]
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..tasks import Task, get_task

logger = logging.getLogger(__name__)

STRATEGIES = ("hybrid", "uncertainty", "diversity", "random", "disagreement")


@dataclass
class Choice:
    """One chosen pool text: its position, score, and the numbers behind the score."""

    index: int
    score: float
    reason: str
    numbers: dict = field(default_factory=dict)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (cosine is then a dot product)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_distance(x: np.ndarray, centers: np.ndarray | None, block: int = 4096) -> np.ndarray:
    """Cosine distance from each row of ``x`` to its nearest row of ``centers`` (unit rows); 1 with no centers."""
    if centers is None or len(centers) == 0:
        return np.ones(len(x))
    out = np.empty(len(x))
    for start in range(0, len(x), block):
        out[start: start + block] = 1.0 - (x[start: start + block] @ centers.T).max(axis=1)
    return np.clip(out, 0.0, 2.0)


def near_duplicates_of(x: np.ndarray, others: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of rows of ``x`` whose cosine to some row of ``others`` is at least ``threshold`` (unit rows)."""
    if len(others) == 0:
        return np.zeros(len(x), dtype=bool)
    return nearest_distance(x, others) <= 1.0 - threshold + 1e-6


def disagreement(labels_per_text: list[list], n_classes: int) -> np.ndarray:
    """Per text, ``(1 - share of its most frequent label) / (1 - 1/k)``; 0 with fewer than 2 annotations."""
    most = max(1e-12, 1.0 - 1.0 / max(2, n_classes))
    out = np.zeros(len(labels_per_text))
    for i, given in enumerate(labels_per_text):
        if len(given) > 1:
            out[i] = min(1.0, (1.0 - Counter(given).most_common(1)[0][1] / len(given)) / most)
    return out


def rank(probabilities: np.ndarray, embeddings: np.ndarray, strategy: str, budget: int, *,
         candidates: np.ndarray | None = None, centers: np.ndarray | None = None, task: Task | None = None,
         annotator_disagreement: np.ndarray | None = None, seed: int = 42) -> list[Choice]:
    """The ``budget`` most useful pool texts by ``strategy``, most useful first.

    ``candidates``: a mask of the pool texts that may be chosen (others are labelled or excluded);
    ``centers``: embeddings of texts already labelled or excluded, which diversity keeps away from;
    ``task``: the Task whose probabilities these are (its :meth:`~m3cls.tasks.base.Task.uncertainty`);
    single-label when not given.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r} is not one of: {', '.join(STRATEGIES)}")
    n = len(probabilities)
    allowed = np.ones(n, dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    u, margin, entropy = (task or get_task("single_label")).uncertainty(probabilities)
    x = unit_rows(embeddings)
    distance = nearest_distance(x, None if centers is None else unit_rows(centers))
    numbers = {"uncertainty": u, "margin": margin, "entropy": entropy, "distance": distance}
    if strategy in ("hybrid", "diversity"):
        return _k_center(x, u if strategy == "hybrid" else np.ones(n), distance, allowed, budget, numbers, strategy)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(np.flatnonzero(allowed))[:budget]
        return [_choice(int(i), 0.0, "random", numbers) for i in order]
    if strategy == "disagreement":
        a = np.zeros(n) if annotator_disagreement is None else np.asarray(annotator_disagreement, dtype=np.float64)
        numbers["disagreement"] = a
        score = (a + u) / 2.0
    else:
        score = u
    order = sorted(np.flatnonzero(allowed).tolist(), key=lambda i: (-score[i], i))[:budget]
    return [_choice(i, float(score[i]), strategy, numbers) for i in order]


def _k_center(x: np.ndarray, weight: np.ndarray, distance: np.ndarray, allowed: np.ndarray, budget: int,
              numbers: dict, strategy: str) -> list[Choice]:
    """Greedy: the allowed text with the highest ``weight * distance``, then distances to it are folded in."""
    distance = distance.copy()
    open_ = allowed.copy()
    chosen = []
    for _ in range(min(budget, int(open_.sum()))):
        score = np.where(open_, weight * distance, -np.inf)
        i = int(np.argmax(score))  # ties: the first position
        numbers = dict(numbers, distance=distance)
        chosen.append(_choice(i, float(score[i]), strategy, numbers))
        open_[i] = False
        distance = np.minimum(distance, np.clip(1.0 - x @ x[i], 0.0, 2.0))
    return chosen


def _choice(i: int, score: float, strategy: str, numbers: dict) -> Choice:
    values = {k: round(float(v[i]), 6) for k, v in numbers.items()}
    why = {"hybrid": f"uncertainty {values['uncertainty']:.3f} x distance {values['distance']:.3f}",
           "uncertainty": f"margin {values['margin']:.3f}, entropy {values['entropy']:.3f}",
           "diversity": f"distance {values['distance']:.3f} to the nearest labelled or chosen text",
           "random": "random draw",
           "disagreement": f"annotator disagreement {values.get('disagreement', 0.0):.3f}, uncertainty "
                           f"{values['uncertainty']:.3f}"}[strategy]
    return Choice(i, round(score, 6), why, values)

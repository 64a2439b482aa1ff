"""Long documents as windows: how window scores become the document's, and each window's scores per segment.

``--long_text chunks`` classifies overlapping ``max_length`` windows (laid by :class:`m3cls.model.tokens.TextEncoder`,
the same function training used). ``--aggregate`` decides how they make one document:

- ``mean`` (default): the mean of the windows' logits, so every part counts by its evidence;
- ``max``: the window most likely to be the positive label stands for the document -- "is any part of this
  text GPT?" -- so its probabilities are the document's (needs a rule's ``positive_label``);
- ``vote``: each window votes for its top label; the document's probabilities are the vote shares (ties go to
  the label with the higher mean probability).

Every mode returns document *logits* (for ``max`` and ``vote``: ``T * log p``), so temperature, evaluation,
calibration and decision rules work on documents exactly as on single texts.

Example::

    >>> import numpy as np
    >>> windows = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 3.0]])
    >>> from m3cls.metrics.classification import softmax
    >>> [softmax(aggregate(windows, how, 1.0, positive=0)).round(3).tolist() for how in AGGREGATES]
    [[0.269, 0.731], [0.881, 0.119], [0.333, 0.667]]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..metrics.classification import softmax
from ..metrics.decisions import AGGREGATES

__all__ = ["AGGREGATES", "aggregate", "segment_rows"]


def aggregate(window_logits: np.ndarray, how: str, temperature: float, positive: int | None = None) -> np.ndarray:
    """One document's logits from its windows' logits (rows), as ``how`` says (see the module docstring)."""
    window_logits = np.asarray(window_logits, dtype=np.float64)
    if how == "mean" or len(window_logits) == 1:
        return window_logits.mean(axis=0)
    probs = softmax(window_logits, temperature)
    if how == "max":
        if positive is None:
            raise ValueError("aggregate 'max' needs the positive label")
        row = probs[int(probs[:, positive].argmax())]
    elif how == "vote":
        votes = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)
        row = (votes + 1e-6 * probs.mean(axis=0)) / (1 + 1e-6)  # the tie-break stays invisible at 4 decimals
    else:
        raise ValueError(f"unknown aggregate {how!r}")
    return temperature * np.log(np.clip(row, 1e-12, 1.0))


def segment_rows(spans: Sequence[tuple[int, int]], window_logits: np.ndarray, temperature: float,
                 names: Sequence[str]) -> list[dict]:
    """The ``segments`` of one document: each window's character span and its probabilities."""
    probs = softmax(np.asarray(window_logits), temperature)
    return [{"start": int(start), "end": int(end), "probabilities": {n: float(v) for n, v in zip(names, p)}}
            for (start, end), p in zip(spans, probs)]

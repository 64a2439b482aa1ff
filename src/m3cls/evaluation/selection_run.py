"""``m3cls select`` as a library call: read the pool, score it with a model, rank it (:mod:`.selection`).

The model is a saved m3cls folder (``model_path``), or a frozen encoder with a probe fitted on the fly on the
``labelled`` texts (``model_name_or_path``): the probe fits in seconds on cached embeddings, so each labelling
round can refit it. Every embedding goes through the :class:`~m3cls.probe.cache.EmbeddingCache`, and a
fine-tuned model's logits for a pool are kept beside them (:func:`~m3cls.probe.cache.cached_result`), so a second
round over the same pool computes nothing again.

Pool texts identical to a labelled or excluded text (case and white space folded) are never chosen; nor are
those whose embedding cosine to an excluded text reaches ``near_duplicate_cosine``. Labelled and excluded texts
both count as already covered when diversity measures distance.

Example::

    >>> rows, summary = select(SelectRequest(pool="pool.txt", budget=20, model_name_or_path="bundled",
    ...                                      labelled="labelled.json"))                     # doctest: +SKIP
    >>> rows[0]["index"], rows[0]["reason"]                                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from ..data.inspection import text_key
from ..data.readers import iter_items, read_labeled
from ..data.records import ReadOptions, TextData
from ..errors import ConfigError, DataError
from .selection import STRATEGIES, disagreement, near_duplicates_of, rank, unit_rows
from .selection_models import probe_on_the_fly, saved_model

logger = logging.getLogger(__name__)


@dataclass
class SelectRequest:
    """What ``m3cls select`` was asked: the pool, the budget, the strategy and the model."""

    pool: str | None
    budget: int
    strategy: str = "hybrid"
    model_path: str | None = None
    model_name_or_path: str | None = None
    labelled: str | None = None
    exclude: str | None = None
    annotator_column: str = "annotator"
    near_duplicate_cosine: float = 0.95
    seed: int = 42
    max_length: int = 512
    pooling: str = "auto"
    batch_size: int = 32
    device: str = "auto"
    precision: str = "auto"
    cache_dir: str | None = None
    embed_model: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)

    def check(self) -> None:
        """Refuse impossible requests before anything is read or loaded."""
        if self.budget < 1:
            raise ConfigError(f"--budget {self.budget}: choose at least 1 text to label")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy {self.strategy!r} is not one of: {', '.join(STRATEGIES)}")
        if bool(self.model_path) == bool(self.model_name_or_path):
            raise ConfigError("give exactly one of --model_path (a saved model) or --model_name_or_path (an "
                              "encoder, with --labelled texts to fit a probe on)")
        if self.model_name_or_path and not self.labelled:
            raise ConfigError(f"--model_name_or_path {self.model_name_or_path} needs --labelled FILE: the texts "
                              f"labelled so far, to fit a probe on")
        if self.strategy == "disagreement" and not self.labelled:
            raise ConfigError("--strategy disagreement needs --labelled FILE with an annotator column "
                              "(--annotator_column)")
        if not self.pool and self.strategy != "disagreement":
            raise ConfigError("--pool FILE is required: the unlabelled texts to choose from")
        if not 0.0 < self.near_duplicate_cosine <= 1.0:
            raise ConfigError(f"--near_duplicate_cosine {self.near_duplicate_cosine} must be above 0 and at most 1")


def read_texts(path: str, options: ReadOptions) -> list[str]:
    """Every text of a file in any input format (labels, if there, are not needed)."""
    texts = [item.text for item in iter_items(path, options)]
    if not texts:
        raise DataError(f"{path}: no records found; expected at least one text")
    return texts


def select(request: SelectRequest) -> tuple[list[dict], dict]:
    """(output rows, most useful first; a summary) for ``request``."""
    request.check()
    disagreeing = request.strategy == "disagreement"
    read = replace(request.read, group_column=request.annotator_column) if disagreeing else request.read
    labelled = _read_labelled(request.labelled, read) if request.labelled else None
    pool = read_texts(request.pool, request.read) if request.pool else list(dict.fromkeys(labelled.texts))
    excluded = read_texts(request.exclude, request.read) if request.exclude else []
    known = {text_key(t) for t in excluded}
    if labelled is not None and not disagreeing:
        known |= {text_key(t) for t in labelled.texts}
    allowed = np.array([text_key(t) not in known for t in pool], dtype=bool)
    _check_budget(request, allowed, "already labelled or in --exclude")
    scored = _score(request, pool, labelled, excluded)
    centers = scored.excluded if disagreeing else np.vstack([scored.labelled, scored.excluded])
    near = near_duplicates_of(unit_rows(scored.pool), unit_rows(scored.excluded), request.near_duplicate_cosine)
    allowed &= ~near
    _check_budget(request, allowed, f"already labelled, in --exclude, or near-duplicates of --exclude texts "
                                    f"(cosine >= {request.near_duplicate_cosine})")
    votes = _annotations(labelled, pool) if disagreeing else None
    choices = rank(scored.probabilities, scored.pool, request.strategy, request.budget, candidates=allowed,
                   centers=centers, task=scored.task, seed=request.seed,
                   annotator_disagreement=None if votes is None else disagreement(votes, len(scored.names)))
    rows = [{"index": c.index, "text": pool[c.index], "score": c.score, "reason": c.reason, **c.numbers,
             "probabilities": _probabilities(scored.probabilities[c.index], scored.names)} for c in choices]
    summary = {"pool": len(pool), "candidates": int(allowed.sum()), "skipped_near_duplicates": int(near.sum()),
               "chosen": len(rows), "strategy": request.strategy}
    return rows, summary


def _read_labelled(path: str, read: ReadOptions) -> TextData:
    """The labelled texts, with label lists made hashable (tuples) so votes can be counted."""
    from ..tasks.targets import normalize_labels, resolve_task

    data = read_labeled(path, read)
    data.labels = normalize_labels(resolve_task("auto", data.labels, path), data.labels, path)
    return data


def _check_budget(request: SelectRequest, allowed: np.ndarray, why: str) -> None:
    left, where = int(allowed.sum()), request.pool or request.labelled
    if left == 0:
        raise DataError(f"{where}: every text is {why}; nothing is left to label -- give a pool of new texts")
    if request.budget > left:
        raise ConfigError(f"--budget {request.budget} is larger than the {left} texts of {where} left to choose "
                          f"from (the others are {why}); ask for at most {left}")


def _annotations(labelled: TextData, pool: list[str]) -> list[list]:
    """Per pool text, the labels its annotators gave (exact text match)."""
    if labelled.groups is None or any(g is None for g in labelled.groups):
        raise DataError(f"{labelled.path}: --strategy disagreement needs an annotator in every record (the "
                        f"field named by --annotator_column)")
    given: dict[str, list] = defaultdict(list)
    for text, label in zip(labelled.texts, labelled.labels):
        given[text_key(text)].append(label)
    return [given.get(text_key(t), []) for t in pool]


def _probabilities(row: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    order = np.argsort(-row, kind="stable")
    return {names[i]: round(float(row[i]), 6) for i in order}


def _score(request: SelectRequest, pool: list[str], labelled: TextData | None, excluded: list[str]):
    if request.model_path:
        return saved_model(request, pool, labelled.texts if labelled else [], excluded)
    return probe_on_the_fly(request, pool, _majority(labelled), excluded)


def _majority(labelled: TextData) -> TextData:
    """One record per distinct text, with its most frequent label (several annotators may have labelled it)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    first: dict[str, str] = {}
    for text, label in zip(labelled.texts, labelled.labels):
        votes[text_key(text)][label] += 1
        first.setdefault(text_key(text), text)
    return TextData([first[k] for k in votes], [votes[k].most_common(1)[0][0] for k in votes], labelled.path)

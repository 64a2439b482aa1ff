"""The model side of ``m3cls select``: probabilities and embeddings of the pool, through the embedding cache.

- a saved **probe** folder: its encoder embeds (cached) and its head, in numpy, gives the probabilities: a second
  round computes nothing;
- any other saved folder (fine-tuned, LoRA, ONNX export): the :class:`~m3cls.inference.classifier.Classifier`
  gives logits, kept per model and pool with :func:`~m3cls.probe.cache.cached_result`; the diversity embeddings
  come from the folder's own encoder, or ``--embed_model`` (LoRA and ONNX folders hold no plain encoder);
- an encoder with labelled texts: a probe fitted on the fly (the probe's logistic regression head; one
  logistic regression per label for multi-label data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..data.records import TextData
from ..errors import ConfigError
from ..tasks import Task, get_task

logger = logging.getLogger(__name__)


@dataclass
class Scored:
    """Probabilities of the pool texts and embeddings of the pool and of the texts already labelled/excluded."""

    probabilities: np.ndarray
    names: tuple[str, ...]
    task: Task
    pool: np.ndarray
    labelled: np.ndarray
    excluded: np.ndarray


def _embedder(request, model: str, contract=None):
    """An Embedder for ``model``; with a probe's contract, exactly the settings the probe was fitted with."""
    from ..probe.cache import EmbeddingCache, default_cache_dir
    from ..probe.embeddings import Embedder

    settings = dict(max_length=request.max_length, pooling=request.pooling)
    if contract is not None:  # read texts as the model does; a probe pools as it was fitted
        settings = dict(max_length=contract.max_length, truncation=contract.truncation,
                        long_text=contract.long_text, stride=contract.stride,
                        pooling=contract.pooling if contract.head == "probe" else request.pooling)
    cache_dir = request.cache_dir or default_cache_dir()
    embedder = Embedder(model, device=request.device, precision=request.precision, batch_size=request.batch_size,
                        cache_dir=cache_dir, **settings)
    if contract is not None and contract.head == "probe" and embedder.normalize != contract.normalize:
        embedder.normalize = contract.normalize
        embedder.cache = EmbeddingCache(cache_dir, embedder.settings())
    return embedder


def _embed_all(embedder, *groups: list[str]) -> list[np.ndarray]:
    """Each group's embeddings, from one call (one progress bar, one cache lookup)."""
    flat = [t for group in groups for t in group]
    vectors = embedder.embed(flat) if flat else np.empty((0, 0), np.float32)
    bounds = np.cumsum([0, *map(len, groups)])
    width = vectors.shape[1] if len(flat) else 1
    return [vectors[a:b] if b > a else np.empty((0, width), np.float32) for a, b in zip(bounds[:-1], bounds[1:])]


def saved_model(request, pool: list[str], labelled: list[str], excluded: list[str]):
    """Probabilities from a saved model folder, embeddings from its encoder (or ``--embed_model``)."""
    from ..model.folder import read_contract
    from ..model.heads import head_logits, read_head
    contract = read_contract(request.model_path)
    if contract is None:
        raise ConfigError(f"--model_path {request.model_path}: no m3cls.json; give a folder written by "
                          f"'m3cls train'")
    task = get_task(contract.task)
    task.refuse("select", f"--model_path {request.model_path}")
    probe = contract.head == "probe" and not request.embed_model
    embedder = _embedder(request, request.embed_model or request.model_path,
                         None if request.embed_model else contract)
    x_pool, x_labelled, x_excluded = _embed_all(embedder, pool, labelled, excluded)
    if probe:
        logits = head_logits(read_head(request.model_path), x_pool)
    else:
        logits = _cached_logits(request, pool)
    return Scored(task.probabilities(logits, contract.temperature), tuple(contract.labels), task, x_pool,
                  x_labelled, x_excluded)


def _cached_logits(request, pool: list[str]) -> np.ndarray:
    """The saved model's logits for the pool, computed once per model and pool."""
    from ..probe.cache import cached_result, data_digest, default_cache_dir
    from ..probe.embeddings import model_fingerprint

    def compute() -> dict:
        from ..inference.classifier import Classifier

        backend = "onnx" if _is_onnx(request.model_path) else "torch"
        clf = Classifier.from_pretrained(request.model_path, device=request.device, precision=request.precision,
                                         batch_size=request.batch_size, backend=backend)
        return {"logits": np.asarray(clf.logits(pool), dtype=np.float64).tolist()}

    inputs = lambda: {"model": model_fingerprint(request.model_path), "pool": data_digest(pool),  # noqa: E731
                      "device": request.device, "precision": request.precision}
    result, cached = cached_result(request.cache_dir or default_cache_dir(), "select-logits", inputs, compute)
    logger.info("pool logits: %s", "from the cache" if cached else f"computed for {len(pool)} texts")
    return np.asarray(result["logits"], dtype=np.float64)


def _is_onnx(folder: str) -> bool:
    import os

    names = os.listdir(folder)
    return "model.onnx" in names and not any(n.endswith(".safetensors") for n in names)


def probe_on_the_fly(request, pool: list[str], labelled: TextData, excluded: list[str]):
    """A probe fitted on the labelled texts' embeddings scores the pool."""
    from ..tasks.targets import discover_labels, resolve_task
    name = resolve_task("auto", labelled.labels, labelled.path)
    names, task = discover_labels(name, labelled.labels, labelled.path), get_task(name)
    embedder = _embedder(request, request.model_name_or_path)
    x_pool, x_labelled, x_excluded = _embed_all(embedder, pool, labelled.texts, excluded)
    probabilities = fit_and_score(task, x_labelled, labelled.labels, names, x_pool, request.seed)
    return Scored(probabilities, names.names, task, x_pool, x_labelled, x_excluded)


def fit_and_score(task: Task, x: np.ndarray, labels: list, names, x_pool: np.ndarray, seed: int = 42) -> np.ndarray:
    """Fit a probe on ``x`` and its labels; the pool's probabilities. A task that allows the probe head gets
    it; another fits its own probe (:meth:`~m3cls.tasks.base.Task.probe_probabilities`)."""
    from ..probe.head import HeadSettings, fit_head

    task.refuse("select", "--labelled")
    truth = task.truth(labels, names, "--labelled")
    if not task.allows("probe"):
        return task.probe_probabilities(x, truth, x_pool)
    head = fit_head(x, truth, len(names), HeadSettings(seed=seed))
    return task.probabilities(head.logits(x_pool), 1.0)

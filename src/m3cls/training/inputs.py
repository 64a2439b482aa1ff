"""Training data: read and checked before anything loads, then tokenized once through the contract's encoder."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..data.readers import TextData, read_labeled
from ..data.splits import split_for_task
from ..errors import ConfigError
from ..model.tokens import TextEncoder
from ..tasks import get_task
from ..tasks.labels import LabelSet
from ..tasks.targets import (
    TargetScale,
    check_known,
    discover_labels,
    normalize_labels,
    resolve_task,
    training_targets,
)
from .config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: TextData
    validation: TextData
    labels: LabelSet
    task: str = "single_label"
    scale: TargetScale | None = None  # regression: how targets are standardised

    def targets(self, part: TextData) -> list:
        """What the Trainer learns for ``part``: class ids, multi-hot rows or standardised numbers."""
        return training_targets(self.task, part.labels, self.labels, self.scale, part.path)


def prepare_data(config: TrainConfig, seed: int) -> PreparedData:
    """Read and check all data before anything is loaded or written."""
    options = config.read_options()
    data, given = _read_training(config, options)
    task = resolve_task(config.task, data.labels, data.path)
    data.labels = normalize_labels(task, data.labels, data.path)
    fixed = config.labels.split(",") if config.labels else None
    labels = discover_labels(task, data.labels, data.path, fixed)  # the split keeps every class in train
    if config.validation_path:
        train_data, validation = data, read_labeled(config.validation_path, options)
    elif given is not None:
        train_data, validation = data, given
    else:
        train_data, validation = split_for_task(task, data, config.validation_split, seed)
    validation.labels = normalize_labels(task, validation.labels, validation.path)  # idempotent on a split
    check_known(task, labels, validation.labels, validation.path, data.path)
    scale = TargetScale.fit(train_data.labels, data.path) if get_task(task).scaled_targets else None
    return PreparedData(train_data, validation, labels, task, scale)


def _read_training(config: TrainConfig, options) -> tuple[TextData, TextData | None]:
    """The training data, and a validation split when the dataset brings one (--dataset_name, DatasetDict)."""
    from ..data import sources

    if config.dataset_name or sources.is_dataset_dict(config.data_path):
        return sources.read_splits(config.dataset_name or config.data_path, options, config.train_split,
                                   config.validation_split_name, config.dataset_config, bool(config.dataset_name))
    if config.validation_split_name:
        raise ConfigError(f"--validation_split_name needs --dataset_name or a DatasetDict folder; "
                          f"{config.data_path} has no splits (use --validation_path FILE)")
    return read_labeled(config.data_path, options), None


class EncodedDataset:
    """Token ids made once by the contract's encoder, unpadded; the collator pads each batch to its longest.

    With ``windows``, every max_length window of a text is one item with the text's label (the encoder lays
    the windows, as prediction does); ``bounds[i]:bounds[i+1]`` are text i's items, ``document_label_ids`` the
    texts' labels, so evaluation can score documents."""

    def __init__(self, encoder: TextEncoder, texts: list[str], label_ids: list[int], windows: bool = False):
        groups = encoder.windows(texts) if windows else [[ids] for ids in encoder.encode(texts)]
        self.input_ids = [w for group in groups for w in group]
        self.label_ids = [y for group, y in zip(groups, label_ids) for _ in group]
        self.document_label_ids = list(label_ids)
        self.bounds = np.cumsum([0] + [len(group) for group in groups]) if windows else None

    def __len__(self) -> int:
        return len(self.label_ids)

    def __getitem__(self, i: int) -> dict:
        ids = self.input_ids[i]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": self.label_ids[i]}

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def document_logits(logits: np.ndarray, bounds: np.ndarray | None) -> np.ndarray:
    """Per document, the mean of its windows' logits (prediction's default ``--aggregate mean``)."""
    if bounds is None:
        return np.asarray(logits)
    return np.stack([np.asarray(logits[a:b]).mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


def class_weights(mode: str, label_ids: list[int], n_labels: int) -> list[float] | None:
    """'balanced': n / (k * n_c), the inverse class frequency, so every class weighs the same in the loss."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(label_ids), minlength=n_labels)
    weights = len(label_ids) / (n_labels * np.maximum(counts, 1))
    logger.info("class weights: %s", ", ".join(f"{w:.3f}" for w in weights))
    return weights.tolist()

"""The label set: discovered from the training data (or fixed by ``--labels``), in a stable order.

The order decides the class ids, which are saved as ``id2label``/``label2id`` in the model's ``config.json``
so plain transformers gives label names back.

Example::

    >>> from m3cls.tasks.labels import LabelSet
    >>> LabelSet.discover(["Human", "GPT", "Human"], source="train.json").names
    ('GPT', 'Human')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError, DataError

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _sort_key(name: str) -> tuple:
    """Sort whole-number labels numerically (2 before 10) and the rest as text; any string has a key.

    Only ASCII digits count as numbers: ``str.isdigit`` is also true for "①", "²" and "١٢", which ``int``
    refuses or reads as another label's value. The name breaks ties ("01" and "1"), so the order, and with
    it every class id, never depends on the order the labels were seen in.
    """
    return (0, int(name), name) if _WHOLE_NUMBER.fullmatch(name) else (1, 0, name)


@dataclass(frozen=True)
class LabelSet:
    """An ordered tuple of label names; a label's id is its position."""

    names: tuple[str, ...]

    @classmethod
    def discover(cls, labels: list[str], source: str, fixed: list[str] | None = None) -> "LabelSet":
        """Build the label set from training labels, or check them against a fixed ``--labels`` list."""
        seen = set(labels)
        if fixed is not None:
            return cls._from_fixed(fixed, seen, labels, source)
        if len(seen) < 2:
            only = next(iter(seen), "")
            raise DataError(f"{source}: every one of the {len(labels)} records has the label {only!r}; a "
                            f"classifier needs at least 2 classes")
        return cls(tuple(sorted(seen, key=_sort_key)))

    @classmethod
    def _from_fixed(cls, fixed: list[str], seen: set[str], labels: list[str], source: str) -> "LabelSet":
        names = [name.strip() for name in fixed if name.strip()]
        if len(names) < 2:
            raise ConfigError(f"--labels needs at least 2 names separated by commas, got {','.join(fixed)!r}")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"--labels names {duplicated[0]!r} more than once; list each label once")
        unknown = [n for n in names if n not in seen]
        if unknown:
            raise ConfigError(f"--labels entry {unknown[0]!r} matches no label in {source} (labels found: "
                              f"{', '.join(sorted(seen, key=_sort_key))}); fix the spelling or remove it")
        extra = next((i for i, label in enumerate(labels) if label not in names), None)
        if extra is not None:
            raise DataError(f"{source}: record {extra + 1} has label {labels[extra]!r}, which is not in "
                            f"--labels ({', '.join(names)}); add it to --labels")
        return cls(tuple(names))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def encode(self, labels: list[str], source: str, train_source: str = "the training data") -> list[int]:
        """Map label names to ids; a name outside the set is an error that names the record."""
        mapping = self.label2id
        for number, label in enumerate(labels, 1):
            if label not in mapping:
                raise DataError(f"{source}: record {number} has label {label!r}, which never appears in "
                                f"{train_source} (known labels: {', '.join(self.names)}); fix the label or add "
                                f"such records to the training data")
        return [mapping[label] for label in labels]

    @classmethod
    def from_config(cls, id2label: dict) -> "LabelSet":
        """Rebuild from a model config's ``id2label`` (keys may be strings after JSON)."""
        return cls(tuple(str(id2label[k]) for k in sorted(id2label, key=int)))

"""``train_config.yaml``'s content: the settings of one training run, resolved, in plain YAML values.

Every m3cls setting is written, the main TrainingArguments and those m3cls gives its own defaults always, and
any other TrainingArgument that differs from transformers' default. ``m3cls train --config`` reads it back.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .args import TRAIN_DEFAULTS

#: never written to train_config.yaml: secrets, and what would make a rerun something else than a fresh run
_NOT_SAVED = {"hub_token", "resume_from_checkpoint"}
#: TrainingArguments always written, so a rerun does not depend on a later release's defaults
ALWAYS_SAVED = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                "gradient_accumulation_steps", "warmup_steps", "weight_decay", "lr_scheduler_type", "seed")
#: set from the machine (no accelerator: the CPU and gloo) unless typed, so a rerun elsewhere picks its own
_MACHINE = {"use_cpu", "ddp_backend"}


def run_settings(config, values: dict, explicit: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What ``train_config.yaml`` holds: every m3cls setting, the main TrainingArguments and m3cls' defaults for
    them, and any other TrainingArgument that differs from transformers' default."""
    from transformers import TrainingArguments

    always = set(ALWAYS_SAVED) | set(TRAIN_DEFAULTS)
    settings = {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name not in values or f.name in _NOT_SAVED:
            continue
        if f.name in _MACHINE and f.name not in explicit:
            continue
        value = _plain(values[f.name])
        if value is _SKIP or (f.name not in always and value == _plain(field_default(f))):
            continue
        settings[f.name] = value
    return {k: v for k, v in settings.items() if v is not None and v is not _SKIP and k not in _NOT_SAVED}


_SKIP = object()


def field_default(f: dataclasses.Field):
    """A dataclass field's default value (None when it has none)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _plain(value: Any):
    """A YAML-plain copy of a value (enums by value); _SKIP for objects a file cannot hold."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    if isinstance(value, dict):
        items = {str(k): _plain(v) for k, v in value.items()}
        return _SKIP if any(v is _SKIP for v in items.values()) else items
    return _SKIP

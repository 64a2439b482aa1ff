"""The model contract: everything that turns raw text into a decision, saved as ``m3cls.json``.

Training writes it once; every consumer (the torch and ONNX backends, predict, evaluate, calibrate, serve,
export, distributed predict and the Python API) reads it here and builds model inputs from it through
:class:`m3cls.model.tokens.TextEncoder`. A setting added at training time is added to this class, or it is a silent
train/predict mismatch.

Head ``probe`` (``m3cls train --method probe``) is a frozen encoder with ``pooling`` (cls, mean or max), optional
L2 ``normalize``, and dense layers in ``probe_head.safetensors`` (:mod:`m3cls.model.heads`).

The model folder stays a plain Hugging Face folder; ``m3cls.json`` sits beside it. Facts about the run that
do not change a decision (metrics, data counts, history, calibration notes) live in ``info``.

Versions: a file without ``format_version`` was written before the contract existed (version 1). It is read
with the settings that release always used: head truncation, no windows, stride 0.

Example::

    >>> c = ModelContract(labels=("GPT", "Human"), max_length=512, truncation="tail")
    >>> ModelContract.from_dict(c.to_dict(), "m3cls.json") == c
    True
    >>> ModelContract.from_dict({"labels": ["a", "b"], "max_length": 128}, "old/m3cls.json").truncation
    'head'
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelLoadError
from ..files import write_json

CONTRACT_FILE = "m3cls.json"
FORMAT_VERSION = 2
TASKS = ("single_label", "multi_label", "regression")
HEADS = ("sequence_classification", "probe")
#: how a frozen encoder's token vectors become one text vector (head "probe"); see m3cls.model.heads
POOLINGS = ("cls", "mean", "max")
TRUNCATION_MODES = ("head", "tail", "head_tail")
LONG_TEXT_MODES = ("truncate", "chunks")


@dataclass(frozen=True)
class ModelContract:
    """How raw text becomes a decision for one saved model (see the module docstring)."""

    labels: tuple[str, ...]
    max_length: int
    task: str = "single_label"
    truncation: str = "head"
    long_text: str = "truncate"
    stride: int = 0
    temperature: float = 1.0
    thresholds: dict[str, float] | None = None
    decision: dict[str, Any] | None = None
    target_mean: float | None = None
    target_std: float | None = None
    head: str = "sequence_classification"
    pooling: str | None = None
    normalize: bool = False
    read_options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(n) for n in self.labels))

    def replace(self, **changes: Any) -> "ModelContract":
        return dataclasses.replace(self, **changes)

    def with_info(self, **facts: Any) -> "ModelContract":
        """A copy with ``info`` keys added or replaced."""
        return self.replace(info={**self.info, **facts})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "info"}
        out["labels"] = list(self.labels)
        return {**self.info, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "ModelContract":
        """Read a saved contract of any known version; ``source`` names the file in errors."""
        if not isinstance(data, dict):
            raise ModelLoadError(f"{source}: expected a JSON object; delete it or retrain")
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelLoadError(f"{source}: format_version {version!r} is newer than this m3cls understands "
                                 f"({FORMAT_VERSION}); upgrade m3cls")
        names = {f.name for f in dataclasses.fields(cls)} - {"info"}
        values = {k: v for k, v in data.items() if k in names}
        values["format_version"] = FORMAT_VERSION  # version 1 lacks only fields whose defaults it always used
        for key in ("labels", "max_length"):
            if key not in values:
                raise ModelLoadError(f"{source}: no {key!r}; the file is damaged -- retrain, or delete it to "
                                     f"use the folder as a plain transformers model")
        labels, options = values["labels"], values.get("read_options", {})
        if not isinstance(labels, list) or not all(isinstance(n, (str, int)) and not isinstance(n, bool)
                                                   for n in labels):
            raise ModelLoadError(f"{source}: invalid labels {labels!r} (a list of label names); retrain, or fix "
                                 f"the file")
        if not isinstance(options, dict):
            raise ModelLoadError(f"{source}: invalid read_options {options!r} (an object of read flags); retrain, "
                                 f"or fix the file")
        info = {k: v for k, v in data.items() if k not in names}
        contract = cls(info=info, **values)
        contract.check(source)
        return contract

    def check(self, source: str) -> None:
        """Refuse values no consumer could honour (a damaged or hand-edited file)."""
        problems = []
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} (known: {', '.join(TASKS)})")
        if self.head not in HEADS:
            problems.append(f"head {self.head!r} (known: {', '.join(HEADS)})")
        if self.head == "probe" and self.pooling not in POOLINGS:
            problems.append(f"pooling {self.pooling!r} for head probe (known: {', '.join(POOLINGS)})")
        if not isinstance(self.normalize, bool):
            problems.append(f"normalize {self.normalize!r}")
        if self.truncation not in TRUNCATION_MODES:
            problems.append(f"truncation {self.truncation!r} (known: {', '.join(TRUNCATION_MODES)})")
        if self.long_text not in LONG_TEXT_MODES:
            problems.append(f"long_text {self.long_text!r} (known: {', '.join(LONG_TEXT_MODES)})")
        if not isinstance(self.max_length, int) or self.max_length < 2:
            problems.append(f"max_length {self.max_length!r}")
        if not isinstance(self.stride, int) or self.stride < 0:
            problems.append(f"stride {self.stride!r}")
        t = self.temperature
        if not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            problems.append(f"temperature {t!r}")
        if len(self.labels) < 2 and self.task == "single_label":
            problems.append(f"labels {list(self.labels)!r} (need at least 2)")
        if self.decision is not None:
            from ..errors import ConfigError
            from ..metrics.decisions import DecisionRule

            try:
                DecisionRule.from_dict(self.decision, self.labels, source)
            except ConfigError as e:
                problems.append(str(e).split(": invalid ", 1)[-1])
        problems += self._task_problems()
        if problems:
            raise ModelLoadError(f"{source}: invalid {'; '.join(problems)}; retrain, or fix the file")

    def _task_problems(self) -> list[str]:
        """Thresholds belong to multi-label (one in (0, 1) per label); target scaling to regression; the probe
        head to single-label."""
        problems = []
        if self.head == "probe" and self.task != "single_label":
            problems.append(f"head probe with task {self.task!r} (the probe head is single-label only)")
        if self.thresholds is not None:
            bad = not isinstance(self.thresholds, dict) or set(self.thresholds) != set(self.labels) or not all(
                isinstance(v, (int, float)) and 0 < v < 1 for v in self.thresholds.values())
            if self.task != "multi_label" or bad:
                problems.append(f"thresholds {self.thresholds!r} (multi-label only: one number between 0 and 1 "
                                f"per label)")
        scale = (self.target_mean, self.target_std)
        if self.task == "regression":
            if len(self.labels) != 1:
                problems.append(f"labels {list(self.labels)!r} (a regression model has one output)")
            if scale != (None, None) and not (all(isinstance(v, (int, float)) and math.isfinite(v) for v in scale)
                                              and scale[1] > 0):
                problems.append(f"target_mean/target_std {scale!r} (finite numbers, std above 0)")
        elif scale != (None, None):
            problems.append(f"target_mean/target_std {scale!r} (regression only)")
        if not self.labels:
            problems.append("labels [] (need at least 1)")
        return problems


def contract_path(folder: str) -> str | None:
    """``m3cls.json`` of a model folder, or of the run folder above a ``checkpoint-N`` folder (only there: a
    stray m3cls.json above a plain Hugging Face folder must not change how that model reads text)."""
    folder = os.path.abspath(folder)
    parent = [os.path.dirname(folder)] if re.fullmatch(r"checkpoint-[0-9]+", os.path.basename(folder)) else []
    for candidate in (folder, *parent):
        path = os.path.join(candidate, CONTRACT_FILE)
        if os.path.isfile(path):
            return path
    return None


def read_contract(folder: str) -> ModelContract | None:
    """The folder's contract, or None for a plain Hugging Face folder without ``m3cls.json``."""
    path = contract_path(folder)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{path}: cannot read ({e}); delete it or retrain") from None
    return ModelContract.from_dict(data, path)


def write_contract(folder: str, contract: ModelContract) -> str:
    """Write ``m3cls.json`` atomically, so a reader never sees half of it."""
    return write_json(os.path.join(folder, CONTRACT_FILE), contract.to_dict(), what="model folder")


def derive_contract(labels: tuple[str, ...], tokenizer, config) -> ModelContract:
    """The contract of a plain transformers classifier folder: its labels, its task (from
    ``config.problem_type``), and what it can read (max 512)."""
    from ..tasks.targets import task_of_problem_type

    limits = [512, getattr(tokenizer, "model_max_length", 512) or 512]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        limits.append(positions - 2 if config.model_type in ("xlm-roberta", "roberta") else positions)
    return ModelContract(labels=labels, max_length=int(min(limits)),
                         task=task_of_problem_type(getattr(config, "problem_type", None)))

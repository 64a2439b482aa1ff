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
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelLoadError
from ..files import write_json
from ..tasks import TASKS, Task, get_task

CONTRACT_FILE = "m3cls.json"
FORMAT_VERSION = 2
#: what each format version means (the docs' contract reference lists it)
VERSION_HISTORY = {
    1: "no format_version: written before the contract existed; read with the settings that release always "
       "used (head truncation, no windows, stride 0)",
    2: "the contract. Fields added since (task, thresholds, decision, target_mean/target_std, head, pooling, "
       "normalize) have defaults that mean what a file without them meant, so such files stay version 2; a "
       "file with a higher version is refused with one line",
}
HEADS = ("sequence_classification", "probe")
#: how a frozen encoder's token vectors become one text vector (head "probe"); see m3cls.model.heads
POOLINGS = ("cls", "mean", "max")
TRUNCATION_MODES = ("head", "tail", "head_tail")
LONG_TEXT_MODES = ("truncate", "chunks")


@dataclass(frozen=True)
class ModelContract:
    """How raw text becomes a decision for one saved model (see the module docstring)."""

    labels: tuple[str, ...] = field(metadata={
        "help": "the label names in id order (the same as config.json's id2label; a mismatch is refused)"})
    max_length: int = field(metadata={"help": "tokens per text (per window with long_text chunks)"})
    task: str = field(default="single_label", metadata={"help": "single_label, multi_label or regression"})
    truncation: str = field(default="head", metadata={
        "help": "which part of a longer text is kept: head, tail or head_tail"})
    long_text: str = field(default="truncate", metadata={
        "help": "the long-text policy, truncate or chunks (windows); prediction uses it by default"})
    stride: int = field(default=0, metadata={"help": "tokens shared by neighbouring windows (chunks)"})
    temperature: float = field(default=1.0, metadata={
        "help": "the fitted softmax temperature ('predict --temperature auto')"})
    thresholds: dict[str, float] | None = field(default=None, metadata={
        "help": "multi-label: each label's decision threshold, tuned on validation (--threshold overrides them)"})
    decision: dict[str, Any] | None = field(default=None, metadata={
        "help": "single-label: the saved decision rule, or null: positive_label and threshold (on that label's "
                "probability), the target it was chosen for with the rate it achieved and its 95% interval, "
                "abstain_below, aggregate (how windows make a document) and the temperature the threshold "
                "refers to"})
    target_mean: float | None = field(default=None, metadata={
        "help": "regression: the mean the target was standardised with; outputs are in the target's units"})
    target_std: float | None = field(default=None, metadata={
        "help": "regression: the standard deviation the target was standardised with"})
    head: str = field(default="sequence_classification", metadata={
        "help": "sequence_classification, or probe (a frozen encoder and a small head in probe_head.safetensors)"})
    pooling: str | None = field(default=None, metadata={"help": "probe: cls, mean or max"})
    normalize: bool = field(default=False, metadata={"help": "probe: L2-normalise the pooled vector"})
    read_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "where the text and label sat in the training records (the read flags' defaults at prediction)"})
    info: dict[str, Any] = field(default_factory=dict, compare=False, metadata={
        "help": "not a field of its own: every other key of the file (metrics, data, history, calibration, "
                "baseline, inspection, ladder, lora, onnx) is a record of the run, kept here, not a setting"})
    format_version: int = field(default=FORMAT_VERSION, metadata={"help": "the file's format (below)"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(n) for n in self.labels))

    @property
    def task_type(self) -> Task:
        """The :class:`~m3cls.tasks.Task` of this model: what its task allows and how it reads logits."""
        return get_task(self.task)

    @property
    def method_title(self) -> str:
        """How the model was made, in a report's words: "probe", "LoRA", "LoRA, merged", "distilled",
        "fine-tuned" (also an m3cls model saved before the method was recorded), or "plain transformers" for a
        folder m3cls did not train."""
        lora = self.info.get("lora")
        if self.head == "probe":
            return "probe"
        if isinstance(lora, dict) and lora:
            return "LoRA, merged" if lora.get("merged") else "LoRA"
        known = {"distill": "distilled", "finetune": "fine-tuned", "probe": "probe"}
        method = known.get(self.info.get("method"))
        return method or ("fine-tuned" if "m3cls_version" in self.info else "plain transformers")

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
        if self.task in TASKS and len(self.labels) < self.task_type.min_labels:
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
        if self.task not in TASKS:
            return problems
        task = self.task_type
        if self.head == "probe" and not task.allows("probe"):
            problems.append(f"head probe with task {self.task!r} (the probe head is single-label only)")
        if self.thresholds is not None:
            bad = not isinstance(self.thresholds, dict) or set(self.thresholds) != set(self.labels) or not all(
                isinstance(v, (int, float)) and 0 < v < 1 for v in self.thresholds.values())
            if not task.has_thresholds or bad:
                problems.append(f"thresholds {self.thresholds!r} (multi-label only: one number between 0 and 1 "
                                f"per label)")
        scale = (self.target_mean, self.target_std)
        if task.scaled_targets:
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

"""One training run as asked: m3cls' settings, transformers' TrainingArguments values, and which flags were typed.

:class:`TrainRequest` is what ``train``, the probe, cross-validation (``cv``, ``audit``) and ``tune`` take. It is
checked completely when it is built, before any data or model is read: m3cls' own settings
(:meth:`TrainConfig.check`), the trackers of ``--report_to``, the precision and transformers' own consistency
checks of the TrainingArguments when fine-tuning (built once on trial, silently; the run builds them again with
the task the data shows), and what the task, when it is given, rules out.

Example::

    >>> from m3cls.training.request import TrainRequest
    >>> request = TrainRequest.build(TrainConfig(data_path="train.json"), {"output_dir": "runs/x"})  # doctest: +SKIP
    >>> request.output_dir                                                                           # doctest: +SKIP
    'runs/x'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .args import as_values, check_field_names
from .config import TrainConfig


@dataclass(frozen=True)
class TrainRequest:
    """m3cls' settings (``config``), the TrainingArguments constructor values (``values``), and the flags the
    user typed (``explicit``: a default may follow another typed flag). Build it with :meth:`build`."""

    config: TrainConfig
    values: dict[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()

    @classmethod
    def build(cls, config: TrainConfig, args=None, explicit: frozenset[str] | set[str] = frozenset()) \
            -> "TrainRequest":
        """The request, checked (ConfigError names the flag and the fix). ``args``: TrainingArguments or their
        values as a dict (None: transformers' defaults)."""
        check_field_names(args)
        request = cls(config, as_values(args) if args is not None else {}, frozenset(explicit))
        request.check()
        return request

    @classmethod
    def of(cls, config: "TrainConfig | TrainRequest", args=None, explicit: frozenset[str] = frozenset()) \
            -> "TrainRequest":
        """A request as given, or one built from the loose pieces (the Python API's ``train(config, args)``)."""
        return config if isinstance(config, TrainRequest) else cls.build(config, args, explicit)

    @property
    def output_dir(self) -> str | None:
        return self.values.get("output_dir")

    @property
    def seed(self) -> int:
        return self.values.get("seed", 42)

    def replace(self, *, config: dict | None = None, values: dict | None = None,
                typed: frozenset[str] | set[str] = frozenset()) -> "TrainRequest":
        """A copy with TrainConfig fields (``config``) and TrainingArguments values (``values``) changed, and
        ``typed`` flags counted as typed. Not checked again: the changes come from code, not from a user."""
        return TrainRequest(dataclasses.replace(self.config, **(config or {})), dict(self.values, **(values or {})),
                            self.explicit | frozenset(typed))

    def with_params(self, params: dict[str, Any]) -> "TrainRequest":
        """A copy with ``params`` (flag name -> value, m3cls' or transformers') set as if typed (a tuning trial)."""
        names = {f.name for f in dataclasses.fields(self.config)}
        return self.replace(config={k: v for k, v in params.items() if k in names},
                            values={k: v for k, v in params.items() if k not in names}, typed=set(params))

    def check(self) -> None:
        """Refuse what cannot work, before any data or model is read."""
        from .args import build_training_args, check_trackers

        self.config.check()
        check_trackers(self.values.get("report_to"))
        _check_task(self.config)
        if self.config.method == "probe":  # a probe builds no TrainingArguments: flags it ignores stay unchecked
            return
        task = self.config.task if self.config.task != "auto" else "single_label"
        # transformers' defaults where the Python API gave a few values; the Hub target is checked by the run
        trial = {**_training_defaults(), **self.values, "push_to_hub": False}
        build_training_args(trial, self.config.precision, self.explicit, task, quiet=True)

    def settings(self) -> dict[str, Any]:
        """``train_config.yaml``'s content (:func:`m3cls.training.settings.run_settings`)."""
        from .settings import run_settings

        return run_settings(self.config, self.values, self.explicit)

    def training_args(self, task: str, values: dict | None = None):
        """(TrainingArguments, precision) for the task the data shows, built once (:mod:`m3cls.training.args`);
        ``values`` replaces this request's (with the Hub flags taken out, say)."""
        from .args import build_training_args

        return build_training_args(self.values if values is None else values, self.config.precision,
                                   self.explicit, task)


def _training_defaults() -> dict[str, Any]:
    """transformers' own default for every TrainingArguments constructor value."""
    from transformers import TrainingArguments

    from .settings import field_default

    return {f.name: field_default(f) for f in dataclasses.fields(TrainingArguments) if f.init}


def _check_task(config: TrainConfig) -> None:
    """What a given task rules out (``auto`` is known only once the labels are read)."""
    if config.method == "finetune" and config.long_text == "chunks" and config.task != "auto":
        from ..tasks import get_task

        get_task(config.task).refuse("chunks")


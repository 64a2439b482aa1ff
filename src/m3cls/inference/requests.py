"""The checks a prediction request must pass, written once for ``m3cls predict``, ``m3cls serve`` and the
Python API (``Classifier.predict``): a temperature scales probabilities (a regression model has none), and
explanations attribute a single-label decision.

The wording is the caller's: a command-line flag (``--temperature``, "drop --temperature") or a JSON field of a
served request (``"temperature"``, "leave "temperature" out"); the rule is the same.

Example::

    >>> check_request("regression", temperature=2.0, explain=False)
    Traceback (most recent call last):
    ...
    m3cls.errors.ConfigError: --temperature scales probabilities; a regression model predicts a number: drop --temperature
    >>> check_request("single_label", temperature=2.0, explain=True, words=FIELDS)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from ..tasks import get_task


@dataclass(frozen=True)
class Wording:
    """How a refusal names an option (``name``) and the way out (``drop``)."""

    name: Callable[[str], str]
    drop: Callable[[str], str]


#: command-line flags and the Python API
FLAGS = Wording(lambda n: f"--{n}", lambda n: f"drop --{n}")
#: the JSON fields of a ``/predict`` request
FIELDS = Wording(lambda n: f'"{n}"', lambda n: f'leave "{n}" out')


def check_request(task: str, temperature: float | None, explain: bool, words: Wording = FLAGS) -> None:
    """Raise ConfigError, worded for the caller, when the model's task cannot honour the request."""
    problem = _task_refusal(task, temperature is not None, explain)
    if problem is not None:
        option, why = problem
        raise ConfigError(f"{words.name(option)} {why}: {words.drop(option)}")


def _task_refusal(task: str, temperature: bool, explain: bool) -> tuple[str, str] | None:
    """(the option refused, why) for this task, or None: the task says what it allows (:class:`m3cls.tasks.Task`)."""
    kind = get_task(task)
    for option, asked in (("temperature", temperature), ("explain", explain)):
        if asked and not kind.allows(option):
            return option, kind.refusal(option)
    return None

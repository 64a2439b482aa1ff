"""Task types: one label per text (single_label), a set of labels (multi_label), or a number (regression).

Everything that differs between task types lives in this package, behind one interface
(:class:`~m3cls.tasks.base.Task`): reading and checking targets (``targets``), the HF ``problem_type``, the
validation splitter, the training hooks (metrics, loss weights), the validation scoring with its fitted
temperature and thresholds, turning logits into prediction fields, the printout, the report and model-card
sections (``cards``), the baseline (``baseline``), and which decision tools a task allows (``Task.refuse``).
The rest of m3cls asks :func:`get_task` and never compares a task's name (``tests/test_layout.py`` checks).

Adding a fourth task (say ``ordinal``):

1. write ``tasks/ordinal.py`` with a ``Task`` subclass: set every class attribute of :class:`Task` and
   implement its methods (``prediction_fields``, ``truth``, ``truth_fields``, ``evaluate``,
   ``format_evaluation``, ``calibrate``, ``training_hooks``, ``score_validation``, ``validation_truth``,
   ``baseline``, ``write_report``, ``card_summary``, ``card_parts``, ``plain_decision``, ``probabilities``,
   ``uncertainty``, ``soft_targets``, ``hard_target``, ``decisions``, ``stress_change``);
2. add it to ``REGISTRY`` below, the only list of tasks;
3. teach ``targets.normalize_labels`` and ``targets.training_targets`` to read and encode its labels, and
   ``data.splits`` its splitter if none of "stratified", "iterative" or "binned" fits;
4. run ``tests/test_tasks.py``: the interface test walks every registered task.

Example::

    >>> from m3cls.tasks import get_task
    >>> get_task("regression").best_metric
    ('rmse', False)
    >>> get_task("multi_label").allows("explain")
    False
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import TOOLS, Task
from .multi_label import MultiLabel
from .regression import Regression
from .single_label import SingleLabel

#: every task type, by name: the one place that lists them
REGISTRY: dict[str, Task] = {task.name: task for task in (SingleLabel(), MultiLabel(), Regression())}
TASKS = tuple(REGISTRY)


def get_task(name: str) -> Task:
    """The Task of a name (``m3cls.json``'s ``task``, ``--task``); an unknown name is one line."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"task {name!r} is not one of: {', '.join(REGISTRY)}") from None


__all__ = ["REGISTRY", "TASKS", "TOOLS", "Task", "get_task"]

"""The Task interface: everything that differs between task types, asked for by the rest of m3cls.

A task is named by a string in the data (``m3cls.json``'s ``task``, ``--task``); :func:`m3cls.tasks.get_task`
turns the name into its :class:`Task`. Code outside ``tasks/`` asks the Task (``task.allows("explain")``,
``task.best_metric``, ``task.evaluate(...)``) and never compares the name itself (``tests/test_layout.py``).
No torch here: what a task needs from torch (its loss) it declares, and training builds.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ConfigError

#: the decision tools and options a task may allow, with what each does and the option that asks for it
TOOLS = {
    "explain": "--explain attributes a single-label decision to words",
    "decision_rule": "decision rules, --aggregate, --abstain_below and --segments apply to single-label models",
    "calibrate_rule": "--target_* and --abstain_below choose a decision rule for a single-label model",
    "chunks": "--long_text chunks trains on windows of single-label texts",
    "probe": "the probe head is single-label only",
    "temperature": "--temperature scales probabilities",
    "class_weights": "--class_weights weighs classes",
    "thresholds": "--threshold applies to multi-label models",
    "slices": "--by and --positive_label score single-label models",
    "detection": "--positive_label scores a single-label model as a detector of one label",
    "from_cv": "--from_cv calibrates single-label models",
    "select": "m3cls select ranks texts by class probabilities",
}


def format_temperature(value: float) -> str:
    """4 significant digits, always with a decimal point: 1.0, 0.8303, 50.0."""
    text = f"{float(value):.4g}"
    return text if "." in text or "e" in text else text + ".0"


class Task:
    """One task type. Subclasses set the class attributes and implement the methods; the registry in
    :mod:`m3cls.tasks` lists them."""

    name: ClassVar[str]
    #: Hugging Face ``config.problem_type``, so plain transformers computes the right loss
    problem_type: ClassVar[str]
    #: the validation splitter :mod:`m3cls.data.splits` uses ("stratified", "iterative" or "binned"), and how
    #: m3cls.json describes it
    splitter: ClassVar[str]
    split_method: ClassVar[str]
    #: the validation score that picks the best checkpoint, and whether higher is better
    best_metric: ClassVar[tuple[str, bool]]
    #: the scores ``m3cls train`` prints on its JSON line
    summary_keys: ClassVar[tuple[str, ...]]
    #: the decision tools and options of :data:`TOOLS` this task allows
    tools: ClassVar[frozenset[str]] = frozenset()
    #: outputs a model of this task needs at least
    min_labels: ClassVar[int] = 1
    #: training draws batches at random unless a sampling strategy is typed (regression: see its module)
    random_batches: ClassVar[bool] = False
    #: the model learns standardised targets (target_mean/target_std in m3cls.json)
    scaled_targets: ClassVar[bool] = False
    #: the contract holds per-label decision thresholds
    has_thresholds: ClassVar[bool] = False
    #: training ends with the ladder (probe rung, baseline) and the single-label scoring; other tasks score
    #: validation with :meth:`score_validation` and put their baseline in the report
    has_ladder: ClassVar[bool] = False
    #: every text has exactly one class id (class counts, per-class advice)
    one_label_per_text: ClassVar[bool] = False
    #: what a distilled student learns from its teacher's logits: "softmax" (KL at T), "sigmoid" (BCE per
    #: label at T) or "value" (MSE on the standardised value); training builds the torch loss from it
    distill_target: ClassVar[str]
    #: a phrase for logs and messages ("multi-label")
    title: ClassVar[str]
    #: the task's own scores ``m3cls stress`` reports for the clean texts and after each perturbation: keys of
    #: the ``after`` part of :meth:`evaluate`, so the clean figures are ``m3cls evaluate``'s
    stress_keys: ClassVar[tuple[str, ...]]
    #: the keys :meth:`stress_change` returns; the first is a share (0 to 1), the one the stress report plots
    change_keys: ClassVar[tuple[str, ...]]
    #: the TF-IDF baseline's name in reports and cards ("TF-IDF + logistic regression")
    baseline_name: ClassVar[str]
    #: what to do instead, per refused tool (the refusal's second half)
    fixes: ClassVar[dict[str, str]] = {}
    #: why, per refused tool, when "this model's task is NAME" does not say it (see :meth:`refusal`)
    reasons: ClassVar[dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    # -- what the task allows ------------------------------------------------------------------------------
    def allows(self, tool: str) -> bool:
        if tool not in TOOLS:
            raise KeyError(tool)
        return tool in self.tools

    def refuse(self, tool: str, where: str | None = None) -> None:
        """Raise the one-line refusal of ``tool`` when this task does not allow it: the one place that says
        which task takes which option, for the CLI, serve and the Python API alike. ``where`` (a model folder)
        starts the line when given."""
        if self.allows(tool):
            return
        fix = self.fixes.get(tool)
        raise ConfigError((f"{where}: " if where else "") + f"{TOOLS[tool]}; this model's task is {self.name}"
                          + (f": {fix}" if fix else ""))

    def refusal(self, tool: str) -> str:
        """Why this task refuses ``tool``, without the option's name ("scales probabilities; a regression model
        predicts a number"), for callers that word the option their own way (a flag, a JSON field)."""
        return f"{TOOLS[tool].split(' ', 1)[1]}; " + self.reasons.get(tool, f"this model's task is {self.name}")

    # -- what clients read beside predictions --------------------------------------------------------------
    def task_info(self, thresholds: dict[str, float]) -> dict:
        """What a client needs beside the predictions to read them (the task; thresholds for multi-label)."""
        return {"task": self.name}

    def format_prediction(self, text: str, temperature: float, prediction, thresholds: dict[str, float]) -> str:
        """The printout of ``m3cls predict --text``: the reference script's block, in this task's terms."""
        raise NotImplementedError

    # -- labelled data and scores (implemented per task) ---------------------------------------------------
    def truth(self, labels: list, label_set, source: str) -> np.ndarray:
        """Normalised labels of a labelled file in the model's terms (ids, 0/1 rows or values)."""
        raise NotImplementedError

    def truth_fields(self, names: tuple[str, ...], truth_row) -> dict:
        """The true label, labels or value beside a prediction in ``evaluate --predictions``."""
        raise NotImplementedError

    def format_evaluation(self, evaluation: dict) -> str:
        """The printed evaluation."""
        raise NotImplementedError

    def baseline(self, prepared) -> dict:
        """The TF-IDF baseline of this task on a training run's split (its figures as ``m3cls.json`` keeps them)."""
        raise NotImplementedError

    def file_baseline(self, texts: list[str], truth: np.ndarray, names) -> tuple[dict | None, str | None]:
        """This task's TF-IDF baseline refit on a labelled file's own cross-validated split (``evaluate
        --report``; ``truth`` as :meth:`truth` gives it): (its figures with a ``label`` and a ``note`` for the
        report, None), or (None, why it cannot be refit there)."""
        raise NotImplementedError

    def evaluate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float, thresholds=None,
                 values=None) -> dict:
        """The evaluation dict of ``m3cls evaluate`` (``values``: logits to target units, for regression)."""
        raise NotImplementedError

    def calibrate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float, thresholds: dict | None,
                  data_path: str) -> tuple[dict, dict, list[str]]:
        """Refit what this task calibrates: (contract changes, calibration info, printed lines)."""
        raise NotImplementedError

    def classes_in(self, labels: list) -> set:
        """The class names that occur in normalised labels (none for regression)."""
        raise NotImplementedError

    def decisions(self, logits: np.ndarray, contract) -> list:
        """The model's own decision per text in this task's label form (a name, a tuple of names, a value),
        at the contract's temperature, thresholds and target scale: what a distilled student is scored
        against when the data has no labels."""
        raise NotImplementedError

    # -- stress (``m3cls stress``: what perturbing the texts does to the model) ---------------------------------
    def stress_scores(self, evaluation: dict) -> dict:
        """The :attr:`stress_keys` of an :meth:`evaluate` result: the task's own figures, flat."""
        return {key: evaluation["after"][key] for key in self.stress_keys}

    def stress_settings(self, contract) -> dict:
        """What :meth:`stress_change` measures against (regression: the shift tolerance); written into the
        stress result as it is."""
        return {}

    def stress_change(self, before: list, after: list, settings: dict) -> dict:
        """How the model's answers moved from the clean texts (``before``) to the perturbed ones (``after``),
        both lists of Predictions in text order: the :attr:`change_keys`."""
        raise NotImplementedError

    # -- predictions ---------------------------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """Per text, the probability of each label at ``temperature`` (softmax or a sigmoid per label)."""
        raise NotImplementedError

    def uncertainty(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uncertainty in [0, 1], margin, normalised entropy) per row of :meth:`probabilities`: how unsure
        the model is of each text (``m3cls select``)."""
        raise NotImplementedError

    def probe_probabilities(self, x: np.ndarray, truth: np.ndarray, x_pool: np.ndarray) -> np.ndarray | None:
        """The pool's probabilities from a probe this task fits itself on labelled embeddings ``x`` and their
        :meth:`truth`; None (the default) when the task uses the probe head of :mod:`m3cls.probe.head`, which
        ``tasks/`` cannot import (it allows the "probe" tool)."""
        return None

    # -- distillation (no torch here: :attr:`distill_target` names the loss) -----------------------------
    def soft_targets(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """What a student learns from the teacher's ``logits``, one row per text, in the form of
        :attr:`distill_target`."""
        raise NotImplementedError

    def hard_target(self, label, names: tuple[str, ...], scale: tuple[float, float]) -> list[float]:
        """A given label as a row of :meth:`soft_targets` (``scale``: the teacher's target mean and std)."""
        raise NotImplementedError

    def prediction_fields(self, logits: np.ndarray, temperature: float, saved_temperature: float, names,
                          thresholds: dict[str, float], values=None) -> list[dict]:
        """Per text, the Prediction fields this task fills (label/label_id/probabilities, labels, value)."""
        raise NotImplementedError

    # -- training ------------------------------------------------------------------------------------------
    def training_hooks(self, class_weights: str, targets: list, labels, scale) -> dict:
        """``compute_metrics`` and ``pos_weight`` for the Trainer; empty to keep the Trainer's defaults."""
        raise NotImplementedError

    def score_validation(self, logits: np.ndarray, truth: np.ndarray, labels, scale, contract):
        """Tasks without the ladder: (evaluation, contract with fitted settings, validation_predictions rows)."""
        raise NotImplementedError

    def validation_truth(self, labels: list, label_ids) -> np.ndarray:
        """Tasks without the ladder: the validation truth that :meth:`score_validation` takes."""
        raise NotImplementedError

    # -- report and card -----------------------------------------------------------------------------------
    def write_report(self, folder, evaluation, history=None, baseline=None, title="m3cls report", sections=None,
                     extra=None, method=None, warnings=None) -> str:
        """Write the HTML report of ``evaluation`` into ``folder``; returns the page's path. ``method`` names how
        the model was made (its contract's ``method_title``) in the tables and legends; ``warnings`` are shown
        boxed under the title; ``baseline`` may carry a ``label`` and a ``note`` saying where it was scored."""
        raise NotImplementedError

    def card_summary(self, labels) -> str:
        """The model card's first words: what kind of model this is."""
        raise NotImplementedError

    def card_parts(self, contract) -> tuple[list[str], list[str]]:
        """The card's task sections before and after the calibration section."""
        raise NotImplementedError

    def plain_decision(self, contract) -> str:
        """The lines of the card's plain-transformers example that turn logits into this task's answer."""
        raise NotImplementedError


"""Hyperparameter search (``m3cls tune``): Optuna's TPE sampler, median pruning on validation macro-F1.

Each trial is an ordinary ``train`` run into ``OUTPUT/trials/trial-N`` with the sampled settings. Every
evaluation reports the validation macro-F1 to Optuna, which stops a trial whose score falls below the median
of earlier trials at the same step. Every trial (complete, pruned or failed, with its error) is appended to
``OUTPUT/tuning/trials.jsonl`` and tabled in ``OUTPUT/tuning/index.html``. Only the best trial's folder is kept,
and it becomes the final model in ``OUTPUT``: the model is kept, not retrained. A failed trial is recorded
and the search goes on.

The search space is the ``search_space`` mapping of the config file, or :data:`DEFAULT_SPACE`. Each entry is a
train flag with ``{low, high}`` (``log: true`` for a log scale, ``step`` for a grid; integers when both ends
are integers), ``{choices: [...]}``, or a plain value to fix it.

Example::

    >>> [p.name for p in parse_space(None, DEFAULT_SPACE, "run.yaml")]
    ['learning_rate', 'num_train_epochs', 'per_device_train_batch_size', 'warmup_steps']
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..errors import ConfigError, TrainingInterrupted
from ..files import require

logger = logging.getLogger(__name__)

DEFAULT_SPACE = {"learning_rate": {"low": 1e-5, "high": 1e-4, "log": True},
                 "num_train_epochs": {"low": 1, "high": 5},
                 "per_device_train_batch_size": {"choices": [8, 16, 32]},
                 "warmup_steps": {"low": 0.0, "high": 0.2}}
_RANGE_KEYS = {"low", "high", "min", "max", "log", "step"}


@dataclass(frozen=True)
class Param:
    """One searched flag: a range (``low``..``high``), a list of ``choices``, or a ``fixed`` value."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    fixed: Any = None

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.low is None:
            return self.fixed
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def parse_space(spec: dict | None, valid: Iterable[str], source: str) -> list[Param]:
    """The search space of a config file (``search_space``), checked; the default space when there is none."""
    import difflib

    spec = DEFAULT_SPACE if spec is None else spec
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{source}: search_space must be a mapping of flags to ranges, e.g. "
                          f"'learning_rate: {{low: 1.0e-5, high: 1.0e-4, log: true}}'")
    names = sorted(set(valid))
    params = []
    for name, entry in spec.items():
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{source}: search_space key {name!r} is not a train flag{hint}")
        params.append(_param(name, entry, f"{source}: search_space.{name}"))
    return params


def _param(name: str, entry: Any, where: str) -> Param:
    if not isinstance(entry, dict):
        return Param(name, fixed=entry)
    if "choices" in entry:
        choices = entry["choices"]
        if set(entry) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list, alone, e.g. {{choices: [8, 16, 32]}}")
        return Param(name, choices=tuple(choices))
    unknown = set(entry) - _RANGE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; use low, high, log, step or choices")
    low, high = (_number(entry.get(a, entry.get(b)), f"{where}.{a}") for a, b in (("low", "min"), ("high", "max")))
    if low > high:
        raise ConfigError(f"{where}: the minimum {low:g} is above the maximum {high:g}; swap them")
    log = bool(entry.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs a minimum above 0, got {low:g}")
    step = None if entry.get("step") is None else _number(entry["step"], f"{where}.step")
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{where}: step must be above 0, and cannot be combined with log")
    return Param(name, low, high, log, step)


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # YAML reads 1e-5 (no dot) as text
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


@dataclass
class TuneResult:
    """The final model folder, the best trial and its score, and one row per trial."""

    output_dir: str
    best_trial: int
    best_score: float
    trials: list[dict] = field(default_factory=list)


def pruning_callback(trial, optuna):
    """A TrainerCallback that reports each evaluation's macro-F1 to Optuna and stops a trial it prunes."""
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        scores: list = []

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            score = (metrics or {}).get("eval_macro_f1")
            if score is None:
                return
            self.scores.append([state.global_step, float(score)])
            trial.report(float(score), step=state.global_step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {state.global_step} (macro-F1 {score:.4f})")

    report = Report()
    report.scores = []
    return report


def tune(request, space: list[Param], n_trials: int | None, timeout: float | None, startup_trials: int = 3,
         warmup_steps: int = 0, train_fn: Callable | None = None) -> TuneResult:
    """Search ``space`` around the run a :class:`~m3cls.training.request.TrainRequest` describes; the best trial
    becomes its ``output_dir``. ``train_fn(request, callbacks=...)`` trains one trial (default: ``train``)."""
    from ..tasks.targets import single_label_only
    from . import train
    from . import tuning_output as out
    from .hub import push_folder, take_hub_target
    from .inputs import prepare_data
    from .save import check_output_dir

    optuna = require("optuna", "tune", "m3cls tune")
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n_trials {n_trials} must be at least 1")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout {timeout} must be above 0 seconds")
    config, output_dir = request.config, request.output_dir
    if config.calibrate_on != "validation":
        raise ConfigError(f"--calibrate_on {config.calibrate_on} would cross-validate every trial; tune without it, "
                          f"then fit the best model's temperature with 'm3cls cv' (its settings) and 'm3cls "
                          f"calibrate --from_cv'")
    check_output_dir(output_dir, config.overwrite_output_dir, config.model_name_or_path)
    prepared = prepare_data(config, request.seed)  # bad data fails here, once, before any trial
    single_label_only(prepared.task, "m3cls tune (it maximises macro-F1)")
    values = dict(request.values)
    hub = take_hub_target(values)
    search = _Search(request.replace(values=values), space, out.Files(output_dir), train_fn or train, optuna)
    sampler = optuna.samplers.TPESampler(seed=request.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # m3cls logs each trial itself
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    interrupted = False
    try:
        study.optimize(search.objective, n_trials=n_trials, timeout=timeout, catch=(Exception,),
                       gc_after_trial=True)
    except KeyboardInterrupt:
        interrupted = True
    result = search.finish()
    if interrupted:
        raise TrainingInterrupted(f"search stopped by Ctrl-C after {len(result.trials)} trial(s); the best so far "
                                  f"(trial {result.best_trial}) is saved in {output_dir}")
    if hub is not None:
        push_folder(output_dir, hub)
    return result


class _Search:
    """The objective Optuna calls, and the bookkeeping of trials: rows, the best folder, the final move."""

    def __init__(self, request, space, files, train_fn, optuna):
        self.request, self.space = request, space
        self.files, self.train_fn, self.optuna = files, train_fn, optuna
        self.rows: list[dict] = []
        self.best: dict | None = None
        files.start(request.config.overwrite_output_dir)

    def objective(self, trial) -> float:
        params = {p.name: p.suggest(trial) for p in self.space}
        folder = self.files.trial_folder(trial.number)
        trial_request = self.request.with_params(params).replace(config={"overwrite_output_dir": True},
                                                                 values={"output_dir": folder})
        report = pruning_callback(trial, self.optuna)
        row = {"trial": trial.number, "state": "running", "params": params, "macro_f1": None, "accuracy": None}
        logger.info("trial %d: %s", trial.number, ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                            for k, v in params.items()))
        started = time.monotonic()
        try:
            result = self.train_fn(trial_request, callbacks=(report,))
        except BaseException as e:
            stop = isinstance(e, (TrainingInterrupted, KeyboardInterrupt))
            state = "pruned" if isinstance(e, self.optuna.TrialPruned) else "interrupted" if stop else "failed"
            self._record(row, state, report, started, error=" ".join(str(e).split())[:500] or type(e).__name__)
            shutil.rmtree(folder, ignore_errors=True)
            if stop:
                raise KeyboardInterrupt from None  # Ctrl-C ends the search (the best trial so far is kept)
            raise
        row.update(macro_f1=result.metrics["macro_f1"], accuracy=result.metrics["accuracy"])
        self._keep_if_best(row, folder)
        self._record(row, "complete", report, started)
        return float(result.metrics["macro_f1"])

    def _record(self, row: dict, state: str, report, started: float, error: str | None = None) -> None:
        row.update(state=state, evaluations=report.scores, error=error,
                   seconds=round(time.monotonic() - started, 1))
        self.rows.append(row)
        self.files.append_trial(row)
        self.files.write_table(self.rows, self.best and self.best["trial"])
        logger.info("trial %d %s%s", row["trial"], state,
                    f": macro-F1 {row['macro_f1']:.4f}" if row["macro_f1"] is not None else f" ({error})")

    def _keep_if_best(self, row: dict, folder: str) -> None:
        if self.best is not None and row["macro_f1"] <= self.best["macro_f1"]:
            shutil.rmtree(folder, ignore_errors=True)
            return
        if self.best is not None:
            shutil.rmtree(self.best["folder"], ignore_errors=True)
        self.best = dict(row, folder=folder)

    def finish(self) -> TuneResult:
        """Move the best trial's folder into place as the final model, or fail when no trial completed."""
        if self.best is None:
            failed = [r for r in self.rows if r["state"] == "failed"]
            first = f" (first error: {failed[0]['error']})" if failed else ""
            raise ConfigError(f"no trial of {len(self.rows)} completed{first}; see {self.files.trials_path}")
        self.files.promote(self.best, self.rows, self.request.config.overwrite_output_dir)
        return TuneResult(self.files.output_dir, self.best["trial"], self.best["macro_f1"], self.rows)

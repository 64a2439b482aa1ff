"""Regression: one number per text. MSE on the standardised target (the model's own loss for
``problem_type="regression"``); scores and predictions are in the target's own units; RMSE picks the checkpoint.

Training batches are drawn at random unless a sampling strategy is typed: with batches of texts of one length,
wherever length goes with the target, MSE learnt little more than the mean (README, "Task types", measured).
"""

from __future__ import annotations

import logging

import numpy as np

from . import cards
from .base import Task

logger = logging.getLogger(__name__)
#: ``m3cls stress`` counts a prediction as moved when it moved by more than this share of the training
#: target's standard deviation
SHIFT_TOLERANCE = 0.1


class Regression(Task):
    name = "regression"
    title = "regression"
    problem_type = "regression"
    splitter = "binned"
    split_method = "stratified by target"
    best_metric = ("rmse", False)
    summary_keys = ("rmse", "mae", "r2")
    random_batches = True
    scaled_targets = True
    card_keys = cards.REGRESSION_KEYS
    probability_form = None
    output_field = "value"
    baseline_name = "TF-IDF + ridge"
    reasons = {"temperature": "a regression model predicts a number"}
    distill_target = "value"
    stress_keys = cards.REGRESSION_KEYS
    change_keys = ("shift_share", "mean_abs_shift")
    fixes = {"explain": "drop --explain",
             "detection": "drop --positive_label; RMSE, MAE, R², Pearson and Spearman are reported without it",
             "chunks": "its run reads each text's first --max_length tokens: drop --long_text chunks",
             "calibrate_rule": "a regression model has no decision to calibrate; 'm3cls evaluate' scores it",
             "temperature": "a regression model predicts a number -- drop it",
             "thresholds": "drop --threshold",
             "class_weights": "a regression run has none -- drop --class_weights",
             "probe": "train it with 'm3cls train --method finetune'",
             "select": "it predicts numbers, so m3cls select handles single-label and multi-label models only"}

    def classes_in(self, labels: list) -> set:
        return set()

    # -- predictions ---------------------------------------------------------------------------------------
    def prediction_fields(self, logits: np.ndarray, temperature: float, saved_temperature: float, names,
                          thresholds: dict[str, float], values=None) -> list[dict]:
        """The value in the target's own units (``values(logits)``)."""
        return [{"value": float(v)} for v in values(logits)]

    def probabilities(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """Refused: a regression model predicts numbers, not probabilities (the "select" line)."""
        self.refuse("select")

    def uncertainty(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Refused: no class probabilities to be unsure about (the "select" line)."""
        self.refuse("select")

    def soft_targets(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """The teacher's values, standardised as it learnt them (the temperature does not apply)."""
        logits = np.asarray(logits, dtype=np.float64)
        return logits.reshape(len(logits), 1)

    def hard_target(self, label, names: tuple[str, ...], scale: tuple[float, float]) -> list[float]:
        """A given value, standardised by the teacher's target mean and std."""
        return [(float(label) - scale[0]) / scale[1]]

    def decisions(self, logits: np.ndarray, contract) -> list:
        """The values in the target's own units."""
        return [float(v) for v in np.asarray(logits).reshape(-1) * (contract.target_std or 1.0)
                + (contract.target_mean or 0.0)]

    def format_prediction(self, text: str, temperature: float, prediction, thresholds: dict[str, float]) -> str:
        """The value, in the target's own units."""
        return "\n".join([f"Text: {text}", f"Predicted value: {prediction.value:.4f}"])

    def stress_settings(self, contract) -> dict:
        """``shift_tolerance``: a tenth of the training target's standard deviation, in the target's units."""
        return {"shift_tolerance": SHIFT_TOLERANCE * float(contract.target_std or 1.0)}

    def stress_change(self, before: list, after: list, settings: dict) -> dict:
        """``shift_share``: the share of predictions that moved by more than the tolerance; ``mean_abs_shift``:
        the mean absolute change of the predicted value."""
        shift = np.abs(np.array([a.value for a in after], dtype=np.float64)
                       - np.array([b.value for b in before], dtype=np.float64))
        if not len(shift):
            return {"shift_share": 0.0, "mean_abs_shift": 0.0}
        return {"shift_share": float((shift > settings["shift_tolerance"]).mean()),
                "mean_abs_shift": float(shift.mean())}

    # -- labelled data and scores --------------------------------------------------------------------------
    def truth(self, labels: list, label_set, source: str) -> np.ndarray:
        return np.asarray(labels, dtype=np.float64)

    def truth_fields(self, names: tuple[str, ...], truth_row) -> dict:
        return {"true_value": float(truth_row)}

    def evaluate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float, thresholds=None,
                 values=None) -> dict:
        from ..metrics.regression import evaluate_regression

        return evaluate_regression(values(logits), truth)

    def format_evaluation(self, evaluation: dict) -> str:
        after = evaluation["after"]
        lines = [f"{evaluation['n']} labelled texts (regression)"]
        lines += [f"{key:<16}{after[key]:>10.4f}" for key in cards.REGRESSION_KEYS]
        lines.append(f"{'std of truth':<16}{after['truth_std']:>10.4f}")
        return "\n".join(lines)

    def calibrate(self, logits, truth, names, temperature, thresholds, data_path):
        from ..errors import ConfigError

        raise ConfigError("a regression model predicts numbers, not probabilities: it has no temperature to "
                          "calibrate; 'm3cls evaluate' scores it")

    # -- training ------------------------------------------------------------------------------------------
    def training_hooks(self, class_weights: str, targets: list, labels, scale) -> dict:
        """compute_metrics: RMSE, MAE, R², Pearson and Spearman in the target's own units."""
        from ..metrics.regression import regression_report

        def compute(eval_pred) -> dict:
            predicted = scale.original(np.asarray(eval_pred.predictions).reshape(-1))
            truth = scale.original(np.asarray(eval_pred.label_ids).reshape(-1))
            report = regression_report(truth, predicted)
            return {k: v for k, v in report.items() if k != "truth_std"}

        return {"compute_metrics": compute, "pos_weight": None}

    def score_validation(self, logits: np.ndarray, truth: np.ndarray, labels, scale, contract):
        """(evaluation, contract with the target's scale, validation_predictions rows); ``truth`` in the
        target's own units."""
        from ..metrics.regression import evaluate_regression

        predicted = scale.original(np.asarray(logits).reshape(-1))
        truth = np.asarray(truth, dtype=np.float64)
        evaluation = evaluate_regression(predicted, truth)
        after = evaluation["after"]
        logger.info("validation: RMSE %.4f, MAE %.4f, R2 %.4f, Pearson %.4f, Spearman %.4f", after["rmse"],
                    after["mae"], after["r2"], after["pearson"], after["spearman"])
        rows = [{"index": i, "value": float(p), "true_value": float(t)}
                for i, (p, t) in enumerate(zip(predicted, truth))]
        return evaluation, contract.replace(target_mean=scale.mean, target_std=scale.std), rows

    def validation_truth(self, labels: list, label_ids) -> np.ndarray:
        return np.asarray(labels)

    def baseline(self, prepared) -> dict:
        from .baseline import regression_baseline

        train, validation = prepared.train, prepared.validation
        return regression_baseline(train.texts, train.labels, validation.texts, validation.labels)

    def file_baseline(self, texts: list[str], truth: np.ndarray, names) -> tuple[dict | None, str | None]:
        """TF-IDF + ridge regression over a seeded split of the file; it needs values that differ."""
        from ..metrics.regression import regression_report
        from .baseline import refit_on_file, ridge_predict

        truth = np.asarray(truth, dtype=np.float64)
        refusal = None if len(truth) and float(truth.std()) > 0 else "every text has the same value"

        def score(y: np.ndarray, predicted: np.ndarray) -> dict:
            return {"name": "tfidf_ridge", **regression_report(y, predicted)}

        return refit_on_file(texts, truth, ridge_predict, score, self.baseline_name, refusal=refusal)

    # -- report and card -----------------------------------------------------------------------------------
    def write_report(self, folder, evaluation, history=None, baseline=None, title="m3cls report", sections=None,
                     extra=None, method=None, warnings=None) -> str:
        from ..reports.tasks import regression_parts, write_parts_report

        return write_parts_report(regression_parts, folder, evaluation, history, baseline, title, sections, method,
                                  warnings)

    def card_summary(self, labels) -> str:
        return "A text regression model (one number per text)"

    def card_parts(self, contract) -> tuple[list[str], list[str]]:
        return ([cards.target_table(contract), cards.task_scores(contract, self.card_keys, False)],
                [cards.task_baseline(contract, self.card_keys, self.baseline_name)])

    def plain_decision(self, contract) -> str:
        return (f"    values = model(**inputs).logits[:, 0] * {contract.target_std!r} + {contract.target_mean!r}"
                f"  # back to the target's units\nprint(values.tolist())")

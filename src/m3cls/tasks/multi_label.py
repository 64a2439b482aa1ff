"""Multi-label classification: a set of labels per text, a sigmoid per label, a threshold per label.

Training uses binary cross-entropy (``--class_weights balanced``: a ``pos_weight`` per label); the validation log
scores decisions at probability 0.5; at the end one temperature is fitted by BCE and each label's threshold is
tuned on validation to maximise its F1. A temperature given at prediction changes the probabilities shown, never
the labels decided (the thresholds were tuned at the saved temperature).
"""

from __future__ import annotations

import logging

import numpy as np

from . import cards
from .base import Task, format_temperature

logger = logging.getLogger(__name__)


class MultiLabel(Task):
    name = "multi_label"
    title = "multi-label"
    problem_type = "multi_label_classification"
    splitter = "iterative"
    split_method = "iterative stratification"
    best_metric = ("micro_f1", True)
    summary_keys = ("micro_f1", "macro_f1", "samples_f1")
    tools = frozenset({"temperature", "class_weights", "thresholds", "select"})
    has_thresholds = True
    card_keys = cards.MULTI_LABEL_KEYS
    probability_form = "sigmoid(logit / T) per label"
    output_field = "probabilities"
    baseline_name = "TF-IDF + one-vs-rest logistic regression"
    distill_target = "sigmoid"
    stress_keys = cards.MULTI_LABEL_KEYS
    change_keys = ("flip_rate",)
    fixes = {"explain": "drop --explain",
             "detection": "drop --positive_label; the multi-label scores (micro-F1, macro-F1, subset accuracy...) "
                          "are reported without it",
             "chunks": "its run reads each text's first --max_length tokens: drop --long_text chunks",
             "calibrate_rule": "plain 'm3cls calibrate' refits its temperature (its per-label thresholds come from "
                              "training; --threshold overrides them)",
             "probe": "train it with 'm3cls train --method finetune'"}

    def classes_in(self, labels: list) -> set:
        return {n for names in labels for n in names}

    def task_info(self, thresholds: dict[str, float]) -> dict:
        return {"task": self.name, "thresholds": dict(thresholds)}

    # -- predictions ---------------------------------------------------------------------------------------
    def prediction_fields(self, logits: np.ndarray, temperature: float, saved_temperature: float, names,
                          thresholds: dict[str, float], values=None) -> list[dict]:
        """The labels over their thresholds (decided at the saved temperature) and every sigmoid, ranked."""
        from ..metrics.multilabel import sigmoid

        shown = sigmoid(logits, temperature)
        decided = shown if temperature == saved_temperature else sigmoid(logits, saved_temperature)
        rows = []
        for row, at_saved in zip(shown, decided):
            ranked = sorted(range(len(names)), key=lambda i: -row[i])
            rows.append({"probabilities": {names[i]: float(row[i]) for i in ranked},
                         "labels": [names[i] for i in ranked if at_saved[i] >= thresholds[names[i]]]})
        return rows

    def probabilities(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """A sigmoid per label at ``temperature``."""
        from ..metrics.multilabel import sigmoid

        return sigmoid(logits, temperature)

    def uncertainty(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Independent sigmoids: the mean over labels of ``1 - |2p - 1|`` (each label's own closeness to 0.5),
        the smallest ``|2p - 1|`` as the margin, and the mean binary entropy."""
        p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
        closeness = np.abs(2.0 * p - 1.0)
        binary = -(p * np.log2(p) + (1 - p) * np.log2(np.clip(1 - p, 1e-12, 1.0)))
        return 1.0 - closeness.mean(axis=1), closeness.min(axis=1), binary.mean(axis=1)

    def probe_probabilities(self, x: np.ndarray, truth: np.ndarray, x_pool: np.ndarray) -> np.ndarray:
        """One logistic regression per label (on standardised embeddings) gives P(label) per pool text."""
        return np.column_stack([_one_label(x, truth[:, j], x_pool) for j in range(truth.shape[1])])

    def soft_targets(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """The teacher's sigmoid per label at ``temperature``."""
        return self.probabilities(np.asarray(logits, dtype=np.float64), temperature)

    def hard_target(self, label, names: tuple[str, ...], scale: tuple[float, float]) -> list[float]:
        return [float(n in label) for n in names]

    def decisions(self, logits: np.ndarray, contract) -> list:
        """The labels at or over their thresholds (0.5 where none), at the contract's temperature."""
        names, thresholds = contract.labels, contract.thresholds or {}
        p = self.probabilities(logits, contract.temperature)
        return [tuple(n for j, n in enumerate(names) if row[j] >= thresholds.get(n, 0.5)) for row in p]

    def format_prediction(self, text: str, temperature: float, prediction, thresholds: dict[str, float]) -> str:
        """The labels over their thresholds and every label's sigmoid."""
        width = max(len(name) for name in prediction.probabilities)
        lines = [f"Text: {text}", f"Temperature: {format_temperature(temperature)}",
                 f"Predicted labels: {', '.join(prediction.labels) or '(none over its threshold)'}",
                 "Probabilities (sigmoid per label; * = at or over its threshold):"]
        lines += [f"  {name:<{width}}  {p:.4f}  threshold {thresholds[name]:.4f}"
                  f"{'  *' if name in prediction.labels else ''}" for name, p in prediction.probabilities.items()]
        return "\n".join(lines)

    def stress_change(self, before: list, after: list, settings: dict) -> dict:
        """``flip_rate``: the share of texts whose set of decided labels changed (any label added or dropped)."""
        changed = [set(a.labels) != set(b.labels) for a, b in zip(before, after)]
        return {"flip_rate": float(np.mean(changed)) if changed else 0.0}

    # -- labelled data and scores --------------------------------------------------------------------------
    def truth(self, labels: list, label_set, source: str) -> np.ndarray:
        from .targets import check_known, multi_hot

        check_known(self.name, label_set, labels, source, "the model's labels")
        return multi_hot(labels, label_set)

    def truth_fields(self, names: tuple[str, ...], truth_row) -> dict:
        return {"true_labels": [n for n, flag in zip(names, truth_row) if flag]}

    def evaluate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float, thresholds=None,
                 values=None) -> dict:
        from ..metrics.multilabel import evaluate_multilabel

        return evaluate_multilabel(logits, truth, names, temperature, thresholds)

    def format_evaluation(self, evaluation: dict) -> str:
        after = evaluation["after"]
        before, card = evaluation["before"], after["label_cardinality"]
        lines = [f"{evaluation['n']} labelled texts (multi-label)"]
        lines += [f"{key:<16}{after[key]:>10.4f}" for key in cards.MULTI_LABEL_KEYS]
        lines += [f"labels per text: {card['truth']:.3f} true, {card['predicted']:.3f} predicted", "",
                  f"{'':<16}{'before':>10}{'after':>10}   (calibration)"]
        lines += [f"{key:<16}{before[key]:>10.4f}{after[key]:>10.4f}" for key in ("log_loss", "ece")]
        lines.append(f"{'temperature':<16}{1.0:>10.4f}{after['temperature']:>10.4f}")
        width = max(8, *(len(n) for n in after["per_label"]))
        lines += ["", f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} "
                      f"{'threshold':>9} {'ece':>9}"]
        for name, s in after["per_label"].items():
            lines.append(f"{name:<{width}} {s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f} "
                         f"{s['support']:>8} {s['threshold']:>9.4f} {after['ece_per_label'][name]:>9.4f}")
        return "\n".join(lines)

    def calibrate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float,
                  thresholds: dict | None, data_path: str) -> tuple[dict, dict, list[str]]:
        """Refit the shared temperature and move the thresholds so every decision stays: (contract changes,
        calibration info, printed lines)."""
        from ..errors import ConfigError
        from ..metrics.multilabel import (
            DEFAULT_THRESHOLD,
            choose_shared_temperature,
            evaluate_multilabel,
            move_thresholds,
        )

        fitted, note = choose_shared_temperature(logits, truth)
        if note:
            raise ConfigError(f"{data_path}: cannot fit a temperature: {note}")
        saved = thresholds or {n: DEFAULT_THRESHOLD for n in names}
        moved = move_thresholds(saved, temperature, fitted)
        evaluation = evaluate_multilabel(logits, truth, names, fitted, moved)
        before, after = evaluation["before"], evaluation["after"]
        info = {"temperature": fitted, "fitted_on": data_path, "shared": True, "note": None,
                "ece_before": before["ece"], "ece_after": after["ece"], "log_loss_before": before["log_loss"],
                "log_loss_after": after["log_loss"], "thresholds_moved_from_temperature": temperature}
        lines = [f"temperature {fitted:.4f} (shared by all labels) fitted on {len(truth)} texts of {data_path}",
                 f"mean ECE {before['ece']:.4f} -> {after['ece']:.4f}",
                 f"log-loss {before['log_loss']:.4f} -> {after['log_loss']:.4f} (binary cross-entropy)",
                 "thresholds moved with the temperature, so every decision stays as it was"]
        return {"temperature": fitted, "thresholds": moved}, info, lines

    # -- training ------------------------------------------------------------------------------------------
    def training_hooks(self, class_weights: str, targets: list, labels, scale) -> dict:
        """compute_metrics at probability 0.5, and a pos_weight per label for ``--class_weights balanced``."""
        from ..metrics.multilabel import flat_multilabel_metrics, multilabel_report

        def compute(eval_pred) -> dict:
            predicted = (np.asarray(eval_pred.predictions) > 0).astype(np.int64)
            truth = np.asarray(eval_pred.label_ids).round().astype(np.int64)
            return flat_multilabel_metrics(multilabel_report(truth, predicted, labels.names))

        return {"compute_metrics": compute,
                "pos_weight": pos_weights(targets) if class_weights == "balanced" else None}

    def score_validation(self, logits: np.ndarray, truth: np.ndarray, labels, scale, contract):
        """(evaluation, contract with temperature and thresholds, validation_predictions rows)."""
        from ..metrics.multilabel import (
            choose_shared_temperature,
            evaluate_multilabel,
            sigmoid,
            tune_thresholds,
        )

        names = labels.names
        truth = np.asarray(truth).round().astype(np.int64)
        temperature, note = choose_shared_temperature(logits, truth)
        if note:
            logger.warning("calibration: %s", note)
        probabilities = sigmoid(logits, temperature)
        thresholds = tune_thresholds(probabilities, truth, names)
        evaluation = evaluate_multilabel(logits, truth, names, temperature, thresholds)
        before, after = evaluation["before"], evaluation["after"]
        evaluation["calibration"] = {"temperature": temperature, "fitted_on": "validation", "shared": True,
                                     "note": note, "ece_before": before["ece"], "ece_after": after["ece"],
                                     "log_loss_before": before["log_loss"], "log_loss_after": after["log_loss"]}
        logger.info("validation: micro-F1 %.4f, macro-F1 %.4f, samples-F1 %.4f, subset accuracy %.4f; "
                    "temperature %.3f: mean ECE %.4f -> %.4f", after["micro_f1"], after["macro_f1"],
                    after["samples_f1"], after["subset_accuracy"], temperature, before["ece"], after["ece"])
        rows = []
        for i, (row, true_row) in enumerate(zip(probabilities, truth)):
            ranked = sorted(range(len(names)), key=lambda j: -row[j])
            rows.append({"index": i, "labels": [names[j] for j in ranked if row[j] >= thresholds[names[j]]],
                         "probabilities": {names[j]: float(row[j]) for j in ranked},
                         "true_labels": [n for n, flag in zip(names, true_row) if flag]})
        return evaluation, contract.replace(temperature=temperature, thresholds=thresholds), rows

    def validation_truth(self, labels: list, label_ids) -> np.ndarray:
        return np.asarray(label_ids)

    def baseline(self, prepared) -> dict:
        from .baseline import multilabel_baseline
        from .targets import multi_hot

        train, validation = prepared.train, prepared.validation
        return multilabel_baseline(train.texts, multi_hot(train.labels, prepared.labels), validation.texts,
                                   multi_hot(validation.labels, prepared.labels), prepared.labels.names)

    def file_baseline(self, texts: list[str], truth: np.ndarray, names) -> tuple[dict | None, str | None]:
        """TF-IDF + one-vs-rest logistic regression over a seeded split of the file; it needs a label that some
        texts carry and others do not."""
        from ..metrics.multilabel import multilabel_report
        from .baseline import ovr_predict, refit_on_file

        truth = np.asarray(truth).round().astype(np.int64)
        varies = len(truth) and bool((truth.any(axis=0) & ~truth.all(axis=0)).any())
        refusal = None if varies else "no label is on some of its texts and off others"

        def score(y: np.ndarray, predicted: np.ndarray) -> dict:
            report = multilabel_report(y, predicted, names)
            return {"name": "tfidf_ovr_logreg", **{k: v for k, v in report.items() if k != "label_cardinality"}}

        return refit_on_file(texts, truth, ovr_predict, score, self.baseline_name, refusal=refusal)

    # -- report and card -----------------------------------------------------------------------------------
    def write_report(self, folder, evaluation, history=None, baseline=None, title="m3cls report", sections=None,
                     extra=None, method=None, warnings=None) -> str:
        from ..reports.tasks import multilabel_parts, write_parts_report

        return write_parts_report(multilabel_parts, folder, evaluation, history, baseline, title, sections, method,
                                  warnings)

    def card_summary(self, labels) -> str:
        return f"A multi-label text classifier with {len(labels)} labels"

    def card_parts(self, contract) -> tuple[list[str], list[str]]:
        return ([cards.label_thresholds_table(contract), cards.task_scores(contract, self.card_keys, True)],
                [cards.task_baseline(contract, self.card_keys, self.baseline_name)])

    def plain_decision(self, contract) -> str:
        t = round(float(contract.temperature), 4)
        return (f"    probabilities = torch.sigmoid(model(**inputs).logits / {t})\n"
                f"thresholds = {dict(contract.thresholds or {})!r}  # tuned per label on validation\n"
                f"print([[name for i, name in model.config.id2label.items() if row[i] >= thresholds.get(name, 0.5)]"
                f" for row in probabilities.tolist()])")


def _one_label(x: np.ndarray, y: np.ndarray, x_pool: np.ndarray) -> np.ndarray:
    """P(label) per pool text; a label every (or no) labelled text has gets its frequency."""
    if y.min() == y.max():
        return np.full(len(x_pool), float(y[0]))
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y)
    return model.predict_proba(scaler.transform(x_pool))[:, 1]


def pos_weights(targets: list) -> list[float]:
    """Per label: texts without it over texts with it, so each label's positives weigh as much as its negatives."""
    y = np.asarray(targets, dtype=np.float64)
    positives = y.sum(axis=0)
    weights = np.where(positives > 0, (len(y) - positives) / np.maximum(positives, 1), 1.0)
    logger.info("pos_weight per label: %s", ", ".join(f"{w:.3f}" for w in weights))
    return weights.tolist()



"""Single-label classification: one label per text, a softmax over the labels, macro-F1 picks the checkpoint.

The task every decision tool was built for: operating points, abstention, segments, explanations, the probe.
"""

from __future__ import annotations

import numpy as np

from . import cards
from .base import Task, format_temperature


class SingleLabel(Task):
    name = "single_label"
    title = "single-label"
    problem_type = "single_label_classification"
    splitter = "stratified"
    split_method = "stratified"
    best_metric = ("macro_f1", True)
    summary_keys = ("accuracy", "macro_f1")
    tools = frozenset({"explain", "decision_rule", "calibrate_rule", "chunks", "probe", "temperature",
                       "class_weights", "slices", "detection", "from_cv", "select"})
    min_labels = 2
    has_ladder = True
    one_label_per_text = True
    card_keys = ("accuracy", "macro_f1")
    probability_form = "softmax(logits / T)"
    output_field = "probabilities"
    baseline_name = "TF-IDF + logistic regression"
    distill_target = "softmax"
    stress_keys = ("accuracy", "macro_f1")
    change_keys = ("flip_rate",)

    fixes: dict[str, str] = {}

    def task_info(self, thresholds: dict[str, float]) -> dict:
        return {}  # single-label predictions read on their own

    def classes_in(self, labels: list) -> set:
        return set(labels)

    def prediction_fields(self, logits: np.ndarray, temperature: float, saved_temperature: float, names,
                          thresholds: dict[str, float], values=None) -> list[dict]:
        """The most probable label and every label's softmax probability, highest first."""
        from ..metrics.classification import softmax

        rows = []
        for p in softmax(logits, temperature):
            top = int(p.argmax())
            ranked = sorted(range(len(names)), key=lambda i: -p[i])
            rows.append({"label": names[top], "label_id": top, "probabilities": {names[i]: float(p[i]) for i in ranked}})
        return rows

    def probabilities(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """Softmax over the classes at ``temperature``."""
        from ..metrics.classification import softmax

        return softmax(logits, temperature)

    def uncertainty(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``1 - margin`` (the gap between the two most probable classes), the margin, and the entropy
        divided by its largest value."""
        p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
        ranked = np.sort(p, axis=1)
        margin = ranked[:, -1] - (ranked[:, -2] if p.shape[1] > 1 else 0.0)
        entropy = -(p * np.log(p)).sum(axis=1) / np.log(max(2, p.shape[1]))
        return 1.0 - margin, margin, entropy

    def soft_targets(self, logits: np.ndarray, temperature: float) -> np.ndarray:
        """The teacher's softmax at ``temperature``."""
        return self.probabilities(np.asarray(logits, dtype=np.float64), temperature)

    def hard_target(self, label, names: tuple[str, ...], scale: tuple[float, float]) -> list[float]:
        return [float(n == label) for n in names]

    def decisions(self, logits: np.ndarray, contract) -> list:
        """The most probable class per text (the temperature does not move it)."""
        return [contract.labels[i] for i in np.asarray(logits).argmax(axis=1)]

    def format_prediction(self, text: str, temperature: float, prediction,
                          thresholds: dict[str, float]) -> str:
        """The reference script's printout: the text, the temperature, the label, every label's probability."""
        width = max(len(name) for name in prediction.probabilities)
        lines = [f"Text: {text}", f"Temperature: {format_temperature(temperature)}",
                 f"Predicted label: {prediction.label} (id {prediction.label_id})", "Probabilities:"]
        lines += [f"  {name:<{width}}  {p:.4f}" for name, p in prediction.probabilities.items()]
        if prediction.decision is not None:
            lines.append(f"Decision: {prediction.decision}")
        if prediction.segments:
            lines.append("Segments (characters: top label and its probability):")
        for segment in prediction.segments or []:
            best = max(segment["probabilities"], key=segment["probabilities"].get)
            lines.append(f"  chars {segment['start']}-{segment['end']}: {best} {segment['probabilities'][best]:.4f}")
        if prediction.attributions:
            top = sorted(prediction.attributions, key=lambda w: -abs(w[1]))[:10]
            lines.append(f"Words that moved {prediction.decision or prediction.label} most: "
                         + ", ".join(f"{w} {s:+.4f}" for w, s in top))
        return "\n".join(lines)

    def stress_change(self, before: list, after: list, settings: dict) -> dict:
        """``flip_rate``: the share of texts whose decision changed (the saved rule's, else the top label)."""
        return {"flip_rate": _share_changed([_decided(p) for p in before], [_decided(p) for p in after])}

    def truth(self, labels: list, label_set, source: str) -> np.ndarray:
        return np.asarray(label_set.encode(labels, source, "the model's labels"))

    def truth_fields(self, names: tuple[str, ...], truth_row) -> dict:
        return {"true_label": names[truth_row]}

    def evaluate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float, thresholds=None,
                 values=None) -> dict:
        from ..metrics.calibration import evaluate_logits

        return evaluate_logits(logits, truth, names, temperature)

    def format_evaluation(self, evaluation: dict) -> str:
        before, after = evaluation["before"], evaluation["after"]
        lines = [f"{evaluation['n']} labelled texts", f"{'':<14}{'before':>10}{'after':>10}   (calibration)"]
        for key in ("accuracy", "macro_f1", "log_loss", "ece"):
            lines.append(f"{key:<14}{before[key]:>10.4f}{after[key]:>10.4f}")
        lines.append(f"{'temperature':<14}{1.0:>10.4f}{after['temperature']:>10.4f}")
        names = list(after["per_class"])
        width = max(8, *(len(n) for n in names))
        lines += ["", f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
        for name, s in after["per_class"].items():
            lines.append(f"{name:<{width}} {s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f} "
                         f"{s['support']:>8}")
        lines += ["", "confusion matrix (rows: true, columns: predicted)",
                  " " * (width + 1) + " ".join(f"{n[:8]:>8}" for n in names)]
        for name, row in zip(names, after["confusion_matrix"]):
            lines.append(f"{name:<{width}} " + " ".join(f"{v:>8}" for v in row))
        return "\n".join(lines)

    def write_report(self, folder, evaluation, history=None, baseline=None, title="m3cls report", sections=None,
                     extra=None, method=None, warnings=None) -> str:
        from ..reports.pages import write_report

        return write_report(folder, evaluation, history, baseline, title, sections, extra, method, warnings)

    def calibrate(self, logits: np.ndarray, truth: np.ndarray, names, temperature: float,
                  thresholds: dict | None, data_path: str) -> tuple[dict, dict, list[str]]:
        """Refit the temperature: (contract changes, calibration info, printed lines)."""
        from ..errors import ConfigError
        from ..metrics.calibration import choose_temperature, evaluate_logits

        fitted, note = choose_temperature(logits, truth)
        if note:
            raise ConfigError(f"{data_path}: cannot fit a temperature: {note}")
        evaluation = evaluate_logits(logits, truth, names, fitted)
        before, after = evaluation["before"], evaluation["after"]
        info = {"temperature": fitted, "fitted_on": data_path, "note": None, "ece_before": before["ece"],
                "ece_after": after["ece"], "log_loss_before": before["log_loss"], "log_loss_after": after["log_loss"]}
        lines = [f"temperature {fitted:.4f} fitted on {len(truth)} texts of {data_path}",
                 f"ECE      {before['ece']:.4f} -> {after['ece']:.4f}",
                 f"log-loss {before['log_loss']:.4f} -> {after['log_loss']:.4f}"]
        return {"temperature": fitted}, info, lines

    def training_hooks(self, class_weights: str, targets: list, labels, scale) -> dict:
        """Nothing: the Trainer's own loss and m3cls' macro-F1 compute_metrics."""
        return {}

    def baseline(self, prepared) -> dict:
        """TF-IDF + logistic regression on the run's split (``prepared``: training's PreparedData)."""
        from .baseline import tfidf_baseline

        train, validation = prepared.train, prepared.validation
        return tfidf_baseline(train.texts, train.labels, validation.texts, validation.labels, prepared.labels)

    def file_baseline(self, texts: list[str], truth: np.ndarray, names) -> tuple[dict | None, str | None]:
        """TF-IDF + logistic regression over a seeded stratified split of the file; it needs two classes of at
        least 2 texts each, so that every fold fits on two classes."""
        from ..metrics.classification import classification_report
        from .baseline import logreg_predict, refit_on_file

        truth = np.asarray(truth, dtype=np.int64)
        classes = int((np.bincount(truth) >= 2).sum()) if len(truth) else 0
        refusal = None if classes >= 2 else "it needs two classes with at least 2 texts each"

        def score(y: np.ndarray, predicted: np.ndarray) -> dict:
            report = classification_report(y, predicted, names)
            return {"name": "tfidf_logreg", "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                    "per_class": report["per_class"]}

        return refit_on_file(texts, truth, logreg_predict, score, self.baseline_name, True, refusal)

    def card_summary(self, labels) -> str:
        return f"A text classifier with {len(labels)} labels"

    def card_parts(self, contract) -> tuple[list[str], list[str]]:
        return ([cards.single_labels(contract), cards.single_scores(contract.info)],
                [cards.single_decision(contract), cards.single_baseline(contract.info)])

    def plain_decision(self, contract) -> str:
        t = round(float(contract.temperature), 4)
        return (f"    probabilities = torch.softmax(model(**inputs).logits / {t}, dim=-1)\n"
                f"print([model.config.id2label[i] for i in probabilities.argmax(-1).tolist()])")


def _decided(prediction):
    return prediction.label if prediction.decision is None else prediction.decision


def _share_changed(before: list, after: list) -> float:
    """The share of positions where ``after`` differs from ``before`` (0 for none)."""
    return float(np.mean([a != b for a, b in zip(before, after)])) if before else 0.0

"""K-fold cross-validation for the probe and for fine-tuning: scores with their spread, and out-of-fold
probabilities for every text (what the label audit ranks).

Folds are stratified, and grouped with ``--group_column``. The probe embeds every text once, through the cache
that all folds share, and fits one head per fold: K folds cost one embedding pass. Fine-tuning trains one model
per fold with :func:`m3cls.training.train`, evaluating only at the end on the held-out fold (no checkpoint is
picked on it, so its scores are not optimistic).

Example::

    >>> from m3cls.training.crossval import CVSettings, run_cv
    >>> result = run_cv(TrainConfig(model_name_or_path="bundled", data_path="d.json", method="probe"),
    ...                 {"output_dir": "runs/cv"}, settings=CVSettings(folds=5))          # doctest: +SKIP
    >>> result.summary["macro_f1_mean"], result.summary["macro_f1_std"]                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.readers import TextData, read_labeled
from ..data.splits import fold_indices
from ..files import atomic_open, write_json
from ..metrics.classification import classification_report, softmax
from ..tasks.labels import LabelSet
from ..tasks.targets import resolve_task, single_label_only
from .augment import settings_of
from .config import TrainConfig
from .request import TrainRequest

logger = logging.getLogger(__name__)

OOF_FILE = "oof_predictions.jsonl"
SUMMARY_FILE = "cv.json"


@dataclass
class CVSettings:
    """The cross-validation flags (beside the training flags)."""

    folds: int = field(default=5, metadata={"help": "Number of folds (at least 2; stratified, grouped with "
                                                    "--group_column)."})
    keep_fold_models: bool = field(default=False, metadata={
        "help": "--method finetune: keep each fold's model in OUTPUT_DIR/fold-K (default: deleted after scoring)."})
    holdout_group: str | None = field(default=None, metadata={
        "help": "Also run leave-one-group-out on this record field (e.g. generator): each value is held out in "
                "turn and scored by a model that never saw it, beside its in-distribution (plain cv) score."})
    background_groups: str | None = field(default=None, metadata={
        "help": "Values of --holdout_group that are never held out (e.g. human): they are split across the "
                "held-out tests, so each has negatives. Comma-separated."})
    positive_label: str | None = field(default=None, metadata={
        "help": "With --holdout_group or --by: also score each group as a detector of this label (AUROC, TPR at "
                "FPR 1%% and 5%%, detection rate, FPR)."})
    by: str | None = field(default=None, metadata={
        "help": "Also score the out-of-fold predictions per value of these record fields (comma-separated; "
                "'length': quartiles of the token count), as 'm3cls evaluate --by' does."})


@dataclass
class CVResult:
    """The data, its labels, the out-of-fold probabilities (T=1) and fold of every text, and the scores."""

    data: TextData
    labels: LabelSet
    y: np.ndarray
    probabilities: np.ndarray
    fold_of: np.ndarray
    summary: dict
    embeddings: np.ndarray | None = None


def run_cv(config: TrainConfig | TrainRequest, values: dict | None = None, explicit: frozenset[str] = frozenset(),
           settings: CVSettings = CVSettings(), what: str = "m3cls cv", data: TextData | None = None,
           labels: LabelSet | None = None) -> CVResult:
    """Cross-validate a :class:`~m3cls.training.request.TrainRequest` (or ``config`` with TrainingArguments
    ``values``) on its ``data_path``, or on ``data`` already read (with its ``labels``: ``train --calibrate_on
    oof`` passes its training split).

    ``what`` names the command in the refusal of multi-label and regression data (single-label only).
    """
    from ..errors import ConfigError

    request = TrainRequest.of(config, values, explicit)
    config, values = request.config, request.values
    if config.validation_path:
        raise ConfigError("cross-validation holds out each fold in turn; drop --validation_path")
    if config.calibrate_on != "validation":
        raise ConfigError(f"--calibrate_on {config.calibrate_on} is a flag of 'm3cls train'; {what} writes the "
                          f"out-of-fold probabilities itself: calibrate a model on them with 'm3cls calibrate "
                          f"--model_path MODEL --from_cv OUTPUT_DIR'")
    if data is not None and (settings.by or settings.holdout_group):
        raise ConfigError("--by and --holdout_group read their columns from --data_path; cross-validate the file")
    seed = request.seed
    data = data if data is not None else read_labeled(config.data_path, config.read_options())
    single_label_only(resolve_task(config.task, data.labels, data.path), what)
    labels = labels or LabelSet.discover(data.labels, data.path, config.labels.split(",") if config.labels else None)
    folds = fold_indices(data.labels, data.groups, settings.folds, seed, data.path)
    y = np.asarray(labels.encode(data.labels, data.path))
    start = time.perf_counter()
    if settings.positive_label is not None and settings.positive_label not in labels.names:
        raise ConfigError(f"--positive_label {settings.positive_label!r} is not a label of {config.data_path} "
                          f"(labels: {', '.join(labels.names)})")
    probabilities, rows = _fold_probabilities(request, settings, data, labels, y, folds)
    fold_of = np.empty(len(y), dtype=int)
    for number, held in enumerate(folds):
        fold_of[held] = number
    summary = _summary(config, y, probabilities, folds, labels, time.perf_counter() - start)
    augment = settings_of(config.augment, config.augment_prob, seed)
    if augment:  # fine-tuning perturbs each fold's training texts on the fly, the probe adds embedded copies
        summary["augment"] = augment
    if settings.by:
        summary.update(_oof_slices(config, settings, data, labels, y, probabilities))
    if settings.holdout_group:
        from .holdout import run_holdout

        def fit_folds(fold_values, holdout):
            return _fold_probabilities(request.replace(values=fold_values), settings, data, labels, y, holdout,
                                       rows)[0]

        summary["holdout"], summary["holdout_settings"] = run_holdout(config, values, settings, data, labels, y,
                                                                      probabilities, fit_folds)
    return CVResult(data, labels, y, probabilities, fold_of, summary, rows.x if rows is not None else None)


def _oof_slices(config, settings, data, labels, y, probabilities) -> dict:
    """``{"slices", "slice_settings"}`` of the out-of-fold predictions (``--by``)."""
    from ..evaluation.slices import LENGTH, parse_by, slice_columns, slice_scores

    columns = parse_by(settings.by)

    def counts():
        from ..model.bundled import resolve_model_name
        from ..model.loading import load_tokenizer

        tokenizer = load_tokenizer(resolve_model_name(config.model_name_or_path), config.trust_remote_code)
        return [len(ids) for ids in tokenizer(data.texts, add_special_tokens=False, truncation=False)["input_ids"]]

    values, edges = slice_columns(columns, config.data_path, config.read_options(), list(range(len(data))), counts)
    result = slice_scores(probabilities, y, probabilities.argmax(1), list(labels.names), values,
                          settings.positive_label)
    if LENGTH in columns:
        result["slice_settings"]["length_edges"] = edges
    return result


def _fold_probabilities(request: TrainRequest, settings, data, labels, y, folds, rows=None):
    """Out-of-fold probabilities (T=1) of every text, each from a model that did not see its fold; and the
    probe's embeddings (:class:`ProbeRows`; ``rows``: reuse these)."""
    if request.config.method == "probe":
        return _probe_folds(request.config, request.values, data, labels, y, folds, request.seed, rows)
    return _finetune_folds(request, data, labels, folds, settings), None

@dataclass
class ProbeRows:
    """The probe's embeddings: one per text (``x``), and with ``--augment`` one per perturbed copy (``extra``)
    with the index of the text it copies (``source``)."""

    x: np.ndarray
    extra: np.ndarray | None = None
    source: np.ndarray | None = None

    def training(self, train: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows and labels a fold's head is fitted on: its training texts, and the copies of those only."""
        if self.extra is None:
            return self.x[train], y[train]
        copied = np.isin(self.source, train)
        return np.vstack([self.x[train], self.extra[copied]]), np.concatenate([y[train], y[self.source[copied]]])


def _probe_rows(config, values, data, seed) -> ProbeRows:
    """Every text embedded once (cached); with ``--augment``, the perturbed copies too, once for all folds."""
    from .augment import copies_of
    from .probe import make_embedder

    embedder = make_embedder(config, values)
    rows = ProbeRows(embedder.embed(data.texts))
    augment = settings_of(config.augment, config.augment_prob, seed)
    copies = copies_of(data.texts, augment) if augment else []
    if copies:
        logger.info("--augment: %d perturbed copies of %d texts, each in the folds that train on its text",
                    len(copies), len(data))
        rows.extra = embedder.embed([text for _, text in copies])
        rows.source = np.array([i for i, _ in copies], dtype=int)
    return rows


def _probe_folds(config, values, data, labels, y, folds, seed, rows: ProbeRows | None = None):
    """One embedding pass (cached), one head per fold."""
    from ..probe.head import fit_head

    if rows is None:
        rows = _probe_rows(config, values, data, seed)
    probabilities = np.zeros((len(y), len(labels)))
    for number, held in enumerate(folds):
        train = np.setdiff1d(np.arange(len(y)), held)
        x_train, y_train = rows.training(train, y)
        head = fit_head(x_train, y_train, len(labels), config.head_settings(seed))
        probabilities[held] = softmax(head.logits(rows.x[held]))
        logger.info("fold %d/%d: probe fitted on %d texts%s, scored on %d", number + 1, len(folds), len(train),
                    f" and {len(x_train) - len(train)} perturbed copies" if len(x_train) > len(train) else "",
                    len(held))
    return probabilities, rows


def _finetune_folds(request: TrainRequest, data, labels, folds, settings):
    """One fine-tuned model per fold, trained without looking at its held-out fold, scored on it at the end."""
    from . import train
    from .inputs import PreparedData

    probabilities = np.zeros((len(data), len(labels)))
    folded = request.replace(config=dict(baseline=False, report=False, ladder=False, overwrite_output_dir=True))
    for number, held in enumerate(folds):
        train_idx = np.setdiff1d(np.arange(len(data)), held).tolist()
        prepared = PreparedData(data.subset(train_idx), data.subset(held.tolist(), f"{data.path} (fold {number + 1})"),
                                labels)
        out = os.path.join(request.output_dir, f"fold-{number + 1}")
        logger.info("fold %d/%d: fine-tuning on %d texts, scoring %d", number + 1, len(folds), len(train_idx),
                    len(held))
        result = train(folded.replace(values=dict(output_dir=out, eval_strategy="no", save_strategy="no"),
                                      typed={"eval_strategy", "save_strategy"}), prepared=prepared)
        probabilities[held] = softmax(result.validation_logits)
        if not settings.keep_fold_models:
            shutil.rmtree(out, ignore_errors=True)
    return probabilities


def _summary(config, y, probabilities, folds, labels, seconds) -> dict:
    per_fold = []
    for number, held in enumerate(folds):
        report = classification_report(y[held], probabilities[held].argmax(axis=1), labels.names)
        per_fold.append({"fold": number + 1, "records": int(len(held)), "accuracy": report["accuracy"],
                         "macro_f1": report["macro_f1"]})
    pooled = classification_report(y, probabilities.argmax(axis=1), labels.names)
    out = {"k": len(folds), "method": config.method, "records": int(len(y)), "labels": list(labels.names),
           "split": f"stratified, grouped by {config.group_column!r}" if config.group_column else "stratified",
           "model": config.model_name_or_path, "folds": per_fold, "seconds": round(seconds, 2),
           "out_of_fold": {"accuracy": pooled["accuracy"], "macro_f1": pooled["macro_f1"]}}
    for key in ("accuracy", "macro_f1"):
        scores = np.array([f[key] for f in per_fold])
        out[f"{key}_mean"], out[f"{key}_std"] = float(scores.mean()), float(scores.std(ddof=1))
    logger.info("cross-validation (%d folds, %s): accuracy %.4f ± %.4f, macro-F1 %.4f ± %.4f (mean ± standard "
                "deviation over folds)", len(folds), config.method, out["accuracy_mean"], out["accuracy_std"],
                out["macro_f1_mean"], out["macro_f1_std"])
    return out


def write_cv(folder: str, result: CVResult, report: bool = True) -> list[str]:
    """``oof_predictions.jsonl`` (every text, in input order), ``cv.json`` and ``report/``; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    names = result.labels.names
    oof = os.path.join(folder, OOF_FILE)
    with atomic_open(oof, "--output_dir") as f:
        for index, (row, truth, fold) in enumerate(zip(result.probabilities, result.y, result.fold_of)):
            f.write(json.dumps({"index": index, "label": names[truth], "fold": int(fold) + 1,
                                "predicted": names[int(row.argmax())],
                                "probabilities": {n: float(p) for n, p in zip(names, row)}},
                               ensure_ascii=False) + "\n")
    paths = [oof, write_json(os.path.join(folder, SUMMARY_FILE), result.summary, "--output_dir")]
    if report:
        paths.append(write_cv_report(os.path.join(folder, "report"), result))
    return paths


def write_cv_report(folder: str, result: CVResult, sections: list | None = None) -> str:
    """The HTML report of the out-of-fold predictions, with the cross-validation section (and any others)."""
    from ..metrics.calibration import evaluate_logits
    from ..reports.pages import cv_section, write_report

    logits = np.log(np.clip(result.probabilities, 1e-12, 1.0))  # softmax(log p) = p
    evaluation = evaluate_logits(logits, result.y, result.labels.names, 1.0)
    title = f"m3cls: {result.summary['k']}-fold cross-validation of {result.summary['model']} on {result.data.path}"
    return write_report(folder, evaluation, title=title, sections=[cv_section(result.summary), *(sections or [])])


def read_oof(folder: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(label names, out-of-fold log-probabilities, true label ids) from a ``m3cls cv`` output folder.

    ``softmax(log p) = p``, so the log-probabilities stand in for logits at temperature 1.
    """
    from ..errors import DataError

    summary_path, oof_path = os.path.join(folder, SUMMARY_FILE), os.path.join(folder, OOF_FILE)
    if not (os.path.isfile(summary_path) and os.path.isfile(oof_path)):
        raise DataError(f"--from_cv {folder}: no {SUMMARY_FILE} and {OOF_FILE} there; give the --output_dir of "
                        f"'m3cls cv'")
    with open(summary_path, encoding="utf-8") as f:
        names = tuple(json.load(f)["labels"])
    probabilities, y = [], []
    with open(oof_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                probabilities.append([row["probabilities"][n] for n in names])
                y.append(names.index(row["label"]))
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{oof_path}: line {number} is not an out-of-fold record of labels "
                                f"{', '.join(names)}; rerun 'm3cls cv'") from None
    return names, np.log(np.clip(np.asarray(probabilities), 1e-12, 1.0)), np.asarray(y)

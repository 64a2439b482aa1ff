"""``m3cls.evaluate``: score a model on labelled data; the same dict ``m3cls evaluate --output`` writes.

The command (``cli/trust.py``) reads its file with ``--on_error`` and prints; both call :func:`evaluation_of`,
the one implementation.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ..data.readers import ReadOptions, TextData, read_labeled
from ..errors import ConfigError
from ..metrics.decisions import area_under_risk_coverage, risk_coverage, summarize
from ..tasks.targets import normalize_labels


def evaluation_of(clf, logits: np.ndarray, truth: np.ndarray) -> dict:
    """The evaluation of ``logits`` against ``truth`` at the model's saved settings, with the decision rule in
    force and the risk-coverage curve where the task has decisions."""
    task = clf.task
    evaluation = task.evaluate(logits, truth, clf.labels.names, clf.temperature, clf.thresholds, clf.values)
    if task.allows("decision_rule"):
        evaluation.update(evaluate_decisions(clf, logits, truth))
    return evaluation


def evaluate_decisions(clf, logits: np.ndarray, y_true: np.ndarray) -> dict:
    """``evaluate``'s additions: the rule in force on this data (if any) and the risk-coverage curve."""
    points = risk_coverage(logits, y_true, clf.temperature)
    out = {"risk_coverage": {"points": points, "aurc": area_under_risk_coverage(points)}}
    if clf.rule.active:
        out["decision"] = summarize(logits, y_true, clf.rule, clf.labels.names)
    return out


def report_baseline(clf, texts: list[str], truth: np.ndarray) -> dict | None:
    """The baseline beside the model in ``evaluate --report``, scored like with like: the task's TF-IDF baseline
    refit on the evaluated texts' own cross-validated split; where the file cannot carry that (too few texts, one
    class), the training run's figure, labelled as from another split; None when the model has neither."""
    from ..tasks.baseline import training_figure

    fitted, why = clf.task.file_baseline(list(texts), truth, clf.labels.names)
    if fitted:
        return fitted
    saved = clf.contract.info.get("baseline")
    if not saved:
        return None
    return training_figure(saved, (clf.contract.info.get("data") or {}).get("validation_texts"), why)


def small_file_warning(count: int) -> str | None:
    """The warning of a report (and of the log) when the evaluated file is too small for its scores to mean much:
    training's threshold and wording (:mod:`m3cls.metrics.sample_size`)."""
    from ..metrics.sample_size import MIN_SCORED, too_few

    return too_few(count, "the evaluated file", f"; evaluate on {MIN_SCORED} or more labelled texts")


def truth_of(clf, labels: list, source: str) -> np.ndarray:
    """The labelled file's truth in the model's terms: class ids, a 0/1 row per text, or the targets; a label
    that does not fit the model's task or labels is one line naming the record."""
    labels = normalize_labels(clf.contract.task, labels, source)
    return clf.task.truth(labels, clf.labels, source)


def load_model(model, **load_options):
    """A :class:`~m3cls.inference.classifier.Classifier` for a model folder's path, or the one given."""
    if isinstance(model, (str, os.PathLike)):
        from ..inference.classifier import Classifier

        return Classifier.from_pretrained(os.fspath(model), **load_options)
    return model


def labelled_data(clf, data, read_options: dict[str, Any]) -> TextData:
    """A labelled file's path (any m3cls format, read as the model was trained unless ``read_options`` say
    otherwise), or records: ``{"text": ..., "label": ...}`` dicts."""
    if isinstance(data, (str, os.PathLike)):
        known = {f.name for f in dataclasses.fields(ReadOptions)}
        unknown = sorted(set(read_options) - known)
        if unknown:
            raise ConfigError(f"unknown read option {unknown[0]!r}; the read options are: {', '.join(sorted(known))}")
        return read_labeled(os.fspath(data), ReadOptions.resolve(read_options, clf.contract.read_options))
    records = list(data)
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict) or "text" not in r or "label" not in r),
               None)
    if bad is not None:
        raise ConfigError(f"records: record {bad + 1} is not a {{'text': ..., 'label': ...}} dict; give records "
                          f"like {{'text': 'a text', 'label': 'sport'}} or a data file's path")
    return TextData([r["text"] for r in records], [r["label"] for r in records], "records")


def evaluate(model, data, **read_options) -> dict:
    """Score a model on labelled data.

    Args:
        model: a model folder's path, or a loaded :class:`~m3cls.inference.classifier.Classifier`.
        data: a labelled file's path (any m3cls input format), or a list of ``{"text", "label"}`` records.
        **read_options: how to read the file (``text_column``, ``label_column``, ``data_format``, ...: the
            fields of :class:`~m3cls.data.records.ReadOptions`); by default as the model was trained.

    Returns:
        The dict ``m3cls evaluate --output`` writes: ``n``, ``before``/``after`` calibration scores (or the
        task's own), the decision rule's figures and the risk-coverage curve where the task has decisions.

    Example::

        >>> import m3cls
        >>> result = m3cls.evaluate("runs/m3", "test.json")  # doctest: +SKIP
        >>> result["after"]["macro_f1"]  # doctest: +SKIP
        0.97
    """
    clf = load_model(model)
    labelled = labelled_data(clf, data, read_options)
    truth = truth_of(clf, labelled.labels, labelled.path)
    logits, _ = clf.logits_and_chunks(labelled.texts)
    return evaluation_of(clf, logits, truth)

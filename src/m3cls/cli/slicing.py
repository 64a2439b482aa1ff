"""``evaluate --by`` and ``--positive_label``: scores per slice (shared pieces, not a command module)."""

from __future__ import annotations

import argparse

import numpy as np

from ..tasks import get_task


def add_slice_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", help="also score each value of these columns of the data file (comma-separated); "
                                "'length' is built in: quartiles of the token count, e.g. --by source,length")
    p.add_argument("--positive_label", help="score slices as a detector of this label: detection rate, FPR, "
                                            "TPR at FPR 1%% and 5%% and AUROC (default: the saved decision "
                                            "rule's positive label, if any)")


def check_slice_flags(a: argparse.Namespace, task: str) -> list[str]:
    """The --by columns; refused for models that are not single-label (before any scoring)."""
    from ..evaluation.slices import parse_by

    columns = parse_by(a.by)
    if columns or a.positive_label:  # slices score one label per text
        get_task(task).refuse("slices")
    return columns


def evaluate_slices(a: argparse.Namespace, columns: list[str], clf, logits: np.ndarray, y_true: np.ndarray,
                    texts: list[str], positions: list[int]) -> dict | None:
    """``{"slices", "slice_settings"}`` for ``evaluate --by`` (None without --by)."""
    from ..evaluation.slices import LENGTH, decided_ids, slice_columns, slice_scores
    from ..metrics.classification import softmax
    from .common import read_options
    from .operating import check_positive

    names = list(clf.labels.names)
    positive = a.positive_label or clf.rule.positive_label
    check_positive(positive, names, a.model_path)
    if not columns:
        return None
    options = read_options(a, clf.contract.read_options)
    values, edges = slice_columns(columns, a.data_path, options, positions,
                                  lambda: clf.token_counts(texts))
    result = slice_scores(softmax(logits, clf.temperature), y_true, decided_ids(clf, logits), names, values,
                          positive)
    if LENGTH in columns:
        result["slice_settings"]["length_edges"] = edges
    return result


def with_slices(extra, sliced: dict | None):
    """The report's ``extra`` (decision figures) with the slice tables and plots after it."""
    if not sliced:
        return extra

    def both(plt, folder):
        from ..reports.slices import slices_section

        figures, text = extra(plt, folder) if extra else ([], "")
        more, table = slices_section(plt, folder, sliced)
        return figures + more, text + "<h2>Slices</h2>" + table

    return both


"""Scores per slice of a labelled file: ``m3cls evaluate --by source,length``.

A detector that is near-perfect on the whole file can still fail one generator, one domain or one group of
writers, and a false-positive rate that is fine on average can be high for one group (non-native writers in
Liang et al. 2023). So every value of a column gets its own ``n``, accuracy, recall per class present, and
macro-F1 (over the classes present, when there are at least two). With a positive label (``--positive_label``,
or the saved decision rule's), each slice also gets, with 95% Clopper-Pearson intervals:

- ``detection_rate``: the share of the slice's positives that the model's decision flags;
- ``fpr``: the share of the slice's negatives that it flags;
- ``tpr_at_fpr``: the share of the slice's positives at or over the thresholds that give FPR 1% and 5% on
  *all* negatives of the file (one threshold per target, as a deployed detector has one);
- ``auroc``: the slice's positives against all negatives of the file. A slice of positives only (one
  generator) is still scored, as RAID and M4 do.

``length`` is built in: texts are put into quartiles of their token count, and the edges are stated.
Slices with fewer than :data:`MIN_RECORDS` records are reported and marked ``"few": true``.

Example::

    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    >>> out = slice_scores(probs, np.array([0, 1, 1, 0]), np.array([0, 1, 1, 0]), ("Human", "GPT"),
    ...                    {"source": ["a", "a", "b", "b"]}, positive="GPT")
    >>> out["slices"]["source"]["b"]["accuracy"], out["slices"]["source"]["b"]["auroc"]
    (1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from ..data.readers import ReadOptions, iter_items
from ..errors import ConfigError, DataError
from ..metrics.decisions import INTERVAL_METHOD, auroc, fpr_threshold, needed_count, rate_with_interval

#: the built-in slice column: quartiles of the token count
LENGTH = "length"
#: slices with fewer records than this are marked ``few``: their rates rest on too little
MIN_RECORDS = 20
#: more distinct values than this in a --by column is a sign of an id or free-text column
MAX_VALUES = 1000
#: the false-positive rates whose thresholds, set on all negatives of the file, each slice's TPR is read at
FPR_TARGETS = (0.01, 0.05)


def parse_by(value: str | None) -> list[str]:
    """The column names of ``--by a,b``, in order, without repeats."""
    if value is None:
        return []
    columns = list(dict.fromkeys(c.strip() for c in value.split(",") if c.strip()))
    if not columns:
        raise ConfigError(f"--by {value!r} names no column; give one or more, e.g. --by source,length")
    return columns


def column_values(path: str, options: ReadOptions, column: str, positions: Sequence[int]) -> list[str]:
    """The ``column`` field of the records at ``positions`` (the ones evaluated), as text, in their order.

    The column is read by the reader that reads the texts (JSON, JSONL, CSV, TSV, Parquet, a saved dataset...),
    as the group, so the values line up with the records. A record among them without a usable value is one
    error naming the record and the column.
    """
    wanted = set(positions)
    found: dict[int, str] = {}
    for item in iter_items(path, replace(options, group_column=column), need_labels=True, keep_bad=True):
        if item.position not in wanted:
            continue
        if item.error is not None or item.group is None:
            raise DataError(f"{item.where} has no usable {column!r} field for --by {column}; give every record "
                            f"a value (a field, or a column of a table), or drop {column} from --by")
        found[item.position] = item.group
    values = [found[p] for p in positions]
    distinct = len(set(values))
    if distinct > MAX_VALUES:
        raise DataError(f"{path}: --by {column} has {distinct} distinct values (more than {MAX_VALUES}); it looks "
                        f"like an id or free text -- bucket it into a new column (e.g. ranges) and slice by that")
    return values


def length_buckets(counts: Sequence[int]) -> tuple[list[str], list[float]]:
    """Each text's token-count quartile as a slice name ("q2: 31-58 tokens"), and the three edges (the 25th,
    50th and 75th percentiles). A text goes in the first quartile whose upper edge it does not exceed."""
    counts = np.asarray(counts)
    edges = [float(e) for e in np.percentile(counts, [25, 50, 75])]
    bounds = [-np.inf, *edges, np.inf]
    names = []
    for i in range(4):
        low, high = bounds[i], bounds[i + 1]
        if i == 0:
            names.append(f"q1: <= {high:g} tokens")
        elif i == 3:
            names.append(f"q4: > {low:g} tokens")
        else:
            names.append(f"q{i + 1}: {low:g} < tokens <= {high:g}")
    which = np.searchsorted(np.asarray(edges), counts, side="left")
    return [names[int(w)] for w in which], edges


def slice_scores(probs: np.ndarray, y: np.ndarray, predicted: np.ndarray, names: Sequence[str],
                 columns: dict[str, list[str]], positive: str | None = None,
                 thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """``{"slices": {column: {value: scores}}, "slice_settings": {...}}`` for single-label predictions.

    ``probs`` are the probabilities the positive label's score is read from; ``predicted`` the label id the
    model decided for each text (-1 for "uncertain"); ``columns`` each column's value per text. ``thresholds``
    (``{"0.01": t, ...}``) replace the ones set on these negatives: ``stress`` keeps the clean data's.
    """
    probs, y, predicted = np.asarray(probs), np.asarray(y), np.asarray(predicted)
    settings: dict[str, Any] = {"min_records": MIN_RECORDS, "positive_label": positive}
    detector = None
    if positive is not None:
        pos = list(names).index(positive)
        scores = probs[:, pos]
        negatives = scores[y != pos]
        if thresholds is None:
            thresholds = {str(t): fpr_threshold(negatives, t) for t in FPR_TARGETS} if len(negatives) else {}
        detector = (pos, scores, negatives, thresholds)
        settings.update(negatives=int(len(negatives)), fpr_thresholds=thresholds, interval_method=INTERVAL_METHOD,
                        enough_negatives={str(t): len(negatives) >= needed_count("fpr", t) for t in FPR_TARGETS})
    slices = {}
    for column, values in columns.items():
        values = np.asarray(values, dtype=object)
        slices[column] = {str(v): _one_slice(y, predicted, names, values == v, detector)
                          for v in sorted(set(values.tolist()), key=str)}
    return {"slices": slices, "slice_settings": settings}


def _one_slice(y: np.ndarray, predicted: np.ndarray, names: Sequence[str], mask: np.ndarray, detector) -> dict:
    truth, guess = y[mask], predicted[mask]
    present = sorted(set(truth.tolist()))
    out: dict[str, Any] = {"n": int(mask.sum()), "few": bool(mask.sum() < MIN_RECORDS),
                           "accuracy": float((truth == guess).mean()),
                           "recall": {names[c]: float((guess[truth == c] == c).mean()) for c in present}}
    if len(present) >= 2:
        out["macro_f1"] = _macro_f1(truth, guess, present)
    if detector is not None:
        out.update(_detection(y, predicted, mask, detector))
    return out


def _macro_f1(truth: np.ndarray, guess: np.ndarray, classes: list[int]) -> float:
    """Mean F1 over ``classes`` (those present in the slice's truth)."""
    scores = []
    for c in classes:
        tp = int(((guess == c) & (truth == c)).sum())
        flagged, actual = int((guess == c).sum()), int((truth == c).sum())
        precision, recall = (tp / flagged if flagged else 0.0), tp / actual
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))


def _detection(y: np.ndarray, predicted: np.ndarray, mask: np.ndarray, detector) -> dict[str, Any]:
    """The detector's figures for one slice: its positives against all negatives of the file."""
    pos, scores, negatives, thresholds = detector
    positives, others = mask & (y == pos), mask & (y != pos)
    n_pos = int(positives.sum())
    flagged = predicted == pos
    out: dict[str, Any] = {"positives": n_pos, "negatives": int(others.sum()),
                           "detection_rate": rate_with_interval(int((flagged & positives).sum()), n_pos),
                           "fpr": rate_with_interval(int((flagged & others).sum()), int(others.sum())),
                           "auroc": auroc(scores[positives], negatives)}
    out["tpr_at_fpr"] = {target: {"threshold": t, **rate_with_interval(int((scores[positives] >= t).sum()), n_pos)}
                         for target, t in thresholds.items()}
    return out


def decided_ids(clf, logits: np.ndarray) -> np.ndarray:
    """The label id a classifier's decision rule gives each row of logits (-1 for "uncertain")."""
    from ..metrics.decisions import UNCERTAIN

    names = list(clf.labels.names)
    return np.array([-1 if d == UNCERTAIN else names.index(d) for d in clf.rule.decide(logits, names)])


def slice_columns(columns: list[str], path: str, options: ReadOptions, positions: Sequence[int],
                  counts=None) -> tuple[dict[str, list[str]], list[float] | None]:
    """Each ``--by`` column's value per evaluated record, and the length edges when ``length`` is asked for.

    ``counts()`` returns the token count per text; it is called only for ``length``.
    """
    out, edges = {}, None
    for column in columns:
        if column == LENGTH:
            out[column], edges = length_buckets(counts())
        else:
            out[column] = column_values(path, options, column, positions)
    return out, edges


def format_slices(result: dict[str, Any]) -> str:
    """The slices as a printed table per column."""
    settings, lines = result["slice_settings"], []
    detector = settings.get("positive_label") is not None
    for column, values in result["slices"].items():
        head = f"{'slice':<28}{'n':>7}{'accuracy':>10}{'macro_f1':>10}"
        if detector:
            head += DETECTOR_HEAD
        lines += ["", f"by {column}" + (f" (quartile edges {settings['length_edges']})" if column == LENGTH and
                                         "length_edges" in settings else ""), head]
        for value, s in values.items():
            row = f"{value[:27]:<28}{s['n']:>7}{s['accuracy']:>10.4f}{_num(s.get('macro_f1')):>10}"
            if detector:
                row += detector_text(s)
            lines.append(row + ("  (few records)" if s["few"] else ""))
    if detector:
        lines.append(f"\npositive label {settings['positive_label']}; tpr@X: thresholds set for FPR X on all "
                     f"{settings['negatives']} negatives of the file; auroc: the slice's positives against them")
    return "\n".join(lines[1:])


#: the printed columns of a detector's figures (:func:`detector_text`)
DETECTOR_HEAD = f"{'detect':>9}{'fpr':>8}{'tpr@1%':>8}{'tpr@5%':>8}{'auroc':>8}"


def detector_text(s: dict) -> str:
    """A slice's detector figures as printed columns under :data:`DETECTOR_HEAD`."""
    from ..reports.slices import detector_cells

    return "".join(f"{v if v == '-' else f'{v:.4f}':>{w}}" for v, w in zip(detector_cells(s), (9, 8, 8, 8, 8)))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

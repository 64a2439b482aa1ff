"""``m3cls evaluate``, ``calibrate`` and ``inspect``: the trust tools."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ..errors import ConfigError, DataError
from ..files import write_json
from . import operating
from .common import (
    add_decision_flags,
    add_model_flags,
    add_read_flags,
    add_threshold_flag,
    check_writable,
    load_classifier,
    read_options,
    write_jsonl,
)
from .helpfmt import finish
from .onerror import BadRecords, add_error_flags
from .slicing import add_slice_flags, check_slice_flags, evaluate_slices, with_slices
from .task_views import format_task_inspection

logger = logging.getLogger("m3cls")


def _model_flags(p: argparse.ArgumentParser, data_required: bool = True) -> None:
    add_model_flags(p)
    p.add_argument("--data_path", required=data_required, help="labelled data, in any m3cls format")
    add_decision_flags(p)
    add_read_flags(p)


def load_labelled(a: argparse.Namespace, policy: BadRecords | None = None):
    """Read the labelled file, then load the model once: (classifier, texts, label ids, record positions).

    With a ``policy`` (evaluate's --on_error), bad records stop or are left out as it says.
    """
    from ..model.folder import ModelFolder

    folder = ModelFolder.read(a.model_path) if os.path.isdir(a.model_path) else None
    saved = folder and folder.contract
    options = read_options(a, saved and saved.read_options)
    data, positions = _read_labelled(a.data_path, options, policy, saved and saved.task)  # before the model loads
    from ..evaluation.evaluate import truth_of

    clf = load_classifier(a, folder)
    y_true = truth_of(clf, data.labels, a.data_path)
    return clf, data.texts, y_true, positions


def _labelled_logits(a: argparse.Namespace, policy: BadRecords | None = None):
    """Load the model once, read the labelled file, and return (classifier, logits, label ids, texts, record
    positions, each text's unknown-token share): the texts are tokenized once."""
    clf, texts, y_true, positions = load_labelled(a, policy)
    logits, shares = clf.logits_and_shares(texts)
    return clf, logits, y_true, texts, positions, shares


def _read_labelled(path: str, options, policy: BadRecords | None, task: str | None = None):
    """The good records and their positions in the input.

    With the model's ``task`` known (its m3cls.json), a label that does not fit it (a target that is not a
    number, a label list for a single-label model) is a bad record too, so --on_error skip can leave it out.
    """
    from ..data.readers import TextData, iter_items, read_labeled

    if policy is None:
        data = read_labeled(path, options)
        return data, list(range(len(data)))
    items = iter_items(path, options, need_labels=True, keep_bad=True)
    items = [item for item in policy.check(_task_checked(items, task) if task else items) if item.error is None]
    if not items:
        raise DataError(f"{path}: no usable records (read {policy.read}, all bad); fix the file")
    return TextData([item.text for item in items], [item.label for item in items], path), \
        [item.position for item in items]


def _task_checked(items, task: str):
    """Items with their labels in the task's form; one whose label does not fit becomes a bad item."""
    from dataclasses import replace

    from ..tasks.targets import normalize_label

    for item in items:
        if item.error is None:
            try:
                item = replace(item, label=normalize_label(task, item.label, item.where))
            except DataError as e:
                item = replace(item, text=None, label=None, error=str(e))
        yield item


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls evaluate", description="Score a model on a labelled file.")
    _model_flags(p)
    p.add_argument("--output", help="write the full results as JSON to this file")
    p.add_argument("--report", help="write an HTML report with plots into this folder")
    p.add_argument("--predictions", help="write each record's true label and probabilities (at the model's "
                                         "temperature) as JSONL to this file, in input order")
    add_error_flags(p)
    add_threshold_flag(p)
    add_slice_flags(p)
    return finish(p, "evaluate")


def cmd_evaluate(argv: list[str]) -> int:
    from ..data.inspection import UnknownTally, training_unknown_share
    from ..evaluation.evaluate import evaluation_of, report_baseline, small_file_warning
    from ..evaluation.slices import format_slices

    a = evaluate_parser().parse_args(argv)
    check_writable(a.output)
    check_writable(a.predictions)
    policy = BadRecords.from_args(a, a.data_path)
    clf, logits, y_true, texts, positions, shares = _labelled_logits(a, policy)
    columns = check_slice_flags(a, clf.contract.task)
    evaluation = evaluation_of(clf, logits, y_true)
    sliced = evaluate_slices(a, columns, clf, logits, y_true, texts, positions)
    evaluation.update(sliced or {})
    print(clf.task.format_evaluation(evaluation))
    if sliced:
        print("\n" + format_slices(sliced))
    if "decision" in evaluation:
        print("\n" + operating.format_decision(evaluation["decision"], len(y_true), a.data_path))
    if "risk_coverage" in evaluation:
        print("\n" + operating.format_risk_coverage(evaluation["risk_coverage"]))
    if policy.skipping:
        print(f"m3cls evaluate: {policy.summary('evaluated')}", file=sys.stderr)
    tally = UnknownTally()
    for share in shares:
        tally.add(None, share)
    warning = tally.warning(training_unknown_share(clf.contract.info), "evaluated records")
    if warning:
        print(f"m3cls evaluate: warning: {warning}", file=sys.stderr)
    if a.output:
        write_json(a.output, evaluation)
        logger.info("wrote %s", a.output)
    if a.predictions:
        rows = (dict(p.to_dict(i), **clf.task.truth_fields(clf.labels.names, t))
                for i, p, t in zip(positions, clf.predictions_from_logits(logits), y_true))
        logger.info("wrote %d predictions to %s", write_jsonl(a.predictions, rows), a.predictions)
    small = small_file_warning(len(y_true))
    if small:
        print(f"m3cls evaluate: warning: {small}", file=sys.stderr)
    if a.report:
        info = clf.contract.info
        name = os.path.basename(os.path.abspath(a.model_path))
        extra = operating.decision_extra(clf, logits, y_true, evaluation.get("decision")) \
            if clf.task.allows("decision_rule") else None
        extra = with_slices(extra, sliced)
        page = clf.task.write_report(a.report, evaluation, history=info.get("history"),
                                     baseline=report_baseline(clf, texts, y_true),
                                     title=f"m3cls: {name} on {a.data_path}", extra=extra,
                                     method=clf.contract.method_title, warnings=[small] if small else None)
        logger.info("report written to %s (training history: %s)", page, "yes" if info.get("history") else "no")
    return 0


def calibrate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls calibrate",
                                description="Refit the model's temperature on a labelled file and save it; with "
                                            "--positive_label and a --target_*, or --abstain_below, choose and "
                                            "save a decision rule instead.")
    _model_flags(p, data_required=False)
    operating.add_target_flags(p)
    p.add_argument("--from_cv", help="fit on the out-of-fold probabilities of this 'm3cls cv' --output_dir "
                                     "(every training text) instead of --data_path")
    return finish(p, "calibrate")


def cmd_calibrate(argv: list[str]) -> int:
    from ..evaluation.calibrate import fit_temperature, save_contract

    a = calibrate_parser().parse_args(argv)
    target = operating.requested_target(a)
    if a.from_cv:
        from .oof import calibrate_from_cv

        return calibrate_from_cv(a, target)
    if not a.data_path:
        raise ConfigError("--data_path (labelled held-out data) or --from_cv (an 'm3cls cv' folder) is required")
    if target is not None or a.abstain_below is not None:
        return operating.calibrate_decision(a, target, lambda args: load_labelled(args)[:3])
    if a.aggregate is not None or a.report:
        raise ConfigError("--aggregate and --report go with --positive_label and a --target_* (or "
                          "--abstain_below); plain 'm3cls calibrate' refits the temperature only")
    clf, logits, y_true, _, _, _ = _labelled_logits(a)
    contract, lines = fit_temperature(clf, logits, y_true, a.data_path)
    save_contract(a.model_path, contract)
    print("\n".join(lines))
    print(f"saved in {os.path.join(a.model_path, 'm3cls.json')}; 'predict --temperature auto' uses it")
    if clf.contract.decision:
        print(f"the saved decision rule keeps the temperature it was chosen at "
              f"({clf.contract.decision['temperature']:.4f}), so its threshold still means what it did")
    return 0


def inspect_parser() -> argparse.ArgumentParser:
    from ..tasks.targets import TASK_CHOICES

    p = argparse.ArgumentParser(prog="m3cls inspect", description="Look at a data set before training on it.")
    p.add_argument("--data_path", required=True, help="labelled data, in any m3cls format")
    p.add_argument("--validation_path", help="labelled validation file (default: split --data_path)")
    p.add_argument("--validation_split", type=float, default=0.1,
                   help="share held out as validation when no --validation_path, as 'm3cls train' does")
    p.add_argument("--seed", type=int, default=42, help="seed of that split")
    p.add_argument("--model_name_or_path", help="also measure token lengths and unknown tokens for this model")
    p.add_argument("--max_length", type=int, default=512, help="tokens per text, for the share cut off")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--task", default="auto", choices=TASK_CHOICES,
                   help="how to read the labels, as 'm3cls train --task' does (auto: lists mean multi-label)")
    add_read_flags(p, saved_defaults=False)
    return finish(p, "inspect")


def cmd_inspect(argv: list[str]) -> int:
    from ..data.inspection import inspect_splits, warnings_for
    from ..data.readers import read_labeled
    from ..data.splits import split_for_task
    from ..tasks.targets import normalize_labels, resolve_task

    a = inspect_parser().parse_args(argv)
    options = read_options(a)
    data = read_labeled(a.data_path, options)
    task = resolve_task(a.task, data.labels, a.data_path)
    data.labels = normalize_labels(task, data.labels, a.data_path)
    if a.validation_path:
        train, validation = data, read_labeled(a.validation_path, options)
        validation.labels = normalize_labels(task, validation.labels, a.validation_path)
    else:
        train, validation = split_for_task(task, data, a.validation_split, a.seed)  # by group with --group_column
    tokenizer = None
    if a.model_name_or_path:
        from ..model.loading import load_tokenizer

        tokenizer = load_tokenizer(a.model_name_or_path)
    report = inspect_splits(train, validation, tokenizer, a.max_length,
                            random_split=not a.validation_path and not options.group_column)
    report["warnings"] = warnings_for(report, a.model_name_or_path or "the model")
    print(json.dumps(report, indent=2, ensure_ascii=False) if a.json else format_inspection(report))
    return 0


def format_inspection(report: dict) -> str:
    lines = []
    for split in ("train", "validation"):
        part = report[split]
        counts = ", ".join(f"{k}: {v}" for k, v in part.get("class_counts", {}).items())
        balance = f" ({counts}); imbalance {part.get('imbalance_ratio', 1):.2f}:1" if "target" not in part else ""
        lines.append(f"{split}: {part['records']} records{balance}; duplicate texts: {part['duplicates']['count']}")
        lines += format_task_inspection(part)
    leak = report["overlap"]
    lines.append(f"train/validation overlap: {leak['count']} text(s) ({leak['share_of_validation']:.1%} of "
                 f"validation)")
    near = report.get("near_duplicates")
    if near:
        lines.append(f"near-identical across the split (char 3-4-gram cosine >= {near['threshold']}): "
                     f"{near['count']} validation text(s) of {near['checked']} checked")
    if report.get("shared_groups"):
        lines.append(f"groups on both sides of the split: {report['shared_groups']}")
    tokens = report.get("tokens")
    if tokens:
        pct = ", ".join(f"{k} {v}" for k, v in tokens["length_percentiles"].items())
        lines.append(f"tokens per text: {pct}; cut at max_length {tokens['max_length']}: "
                     f"{tokens['truncated_share']:.1%}; unknown-token share: {tokens['unknown_token_share']:.2%}")
    lines += [f"WARNING: {w}" for w in report["warnings"]] or ["no warnings"]
    return "\n".join(lines)

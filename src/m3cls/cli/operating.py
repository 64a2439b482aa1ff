"""Operating points and abstention for ``evaluate`` and ``calibrate`` (shared pieces, not a command module)."""

from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np

from ..errors import ConfigError
from ..metrics.classification import softmax
from ..metrics.decisions import (
    INTERVAL_METHOD,
    METRICS,
    DecisionRule,
    check_abstain,
    check_target,
    risk_coverage,
    summarize,
)
from ..tasks import get_task


def add_target_flags(p: argparse.ArgumentParser) -> None:
    """calibrate's operating-point flags."""
    p.add_argument("--positive_label", help="the label whose probability the threshold applies to, e.g. GPT")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--target_fpr", type=float,
                       help="choose the threshold whose false-positive rate on --data_path is at or under this")
    group.add_argument("--target_precision", type=float, help="... whose precision is at or over this")
    group.add_argument("--target_recall", type=float, help="... whose recall is at or over this")
    p.add_argument("--report", help="write an HTML report (ROC and precision-recall curves with the chosen "
                                    "point, risk-coverage) into this folder")


def requested_target(a: argparse.Namespace) -> tuple[str, float] | None:
    """The (metric, value) asked for, checked before anything loads."""
    targets = [(m, getattr(a, f"target_{m}")) for m in METRICS if getattr(a, f"target_{m}") is not None]
    if targets and a.positive_label is None:
        raise ConfigError(f"--target_{targets[0][0]} needs --positive_label: the label whose probability the "
                          f"threshold applies to (e.g. GPT)")
    if a.positive_label is not None and not targets:
        raise ConfigError("--positive_label needs a target: --target_fpr, --target_precision or --target_recall")
    for metric, value in targets:
        check_target(metric, value)
    check_abstain(a.abstain_below)
    return targets[0] if targets else None


def check_positive(label: str | None, names, where: str) -> None:
    if label is not None and label not in names:
        raise ConfigError(f"--positive_label {label!r} is not a label of {where} (labels: {', '.join(names)})")


def _single_label_only(task: str, model_path: str) -> None:
    get_task(task).refuse("calibrate_rule", model_path)


def calibrate_decision(a: argparse.Namespace, target: tuple[str, float] | None, load) -> int:
    """``calibrate`` with a target or ``--abstain_below``: choose the rule on --data_path and save it.

    ``load(a)`` returns (classifier, texts, true label ids) with the flags' overrides left out, so the rule
    here is the only one in force while the data is scored."""
    from ..model.folder import read_contract

    saved = read_contract(a.model_path) if os.path.isdir(a.model_path) else None
    if saved is not None:
        _single_label_only(saved.task, a.model_path)  # before the model loads
    if saved is not None:
        check_positive(a.positive_label, saved.labels, a.model_path)
    if a.report and not os.path.isdir(os.path.dirname(os.path.abspath(a.report))):
        raise ConfigError(f"--report {a.report}: its parent folder does not exist")
    aggregate, abstain = a.aggregate, a.abstain_below
    a.aggregate = a.abstain_below = None
    clf, texts, y_true = load(a)
    _single_label_only(clf.contract.task, a.model_path)  # a plain transformers folder says it in config.json
    names = clf.labels.names
    check_positive(a.positive_label, names, a.model_path)
    if aggregate is not None and clf.long_text != "chunks":
        raise ConfigError("--aggregate needs --long_text chunks: it says how windows make one document")
    start = clf.rule if target is None else DecisionRule(
        temperature=clf.temperature, positive_label=a.positive_label, threshold=0.0,
        abstain_below=clf.rule.abstain_below, aggregate=clf.rule.aggregate)
    if aggregate is not None:
        start = dataclasses.replace(start, aggregate=aggregate)
    if clf.long_text == "chunks" and start.aggregate == "max" and start.positive_label is None:
        raise ConfigError("--aggregate max needs --positive_label and a --target_*: it asks whether any part of "
                          "a text is that label")
    from ..evaluation.calibrate import operating_point, save_contract

    clf.rule = start
    logits, _ = clf.logits_and_chunks(texts)
    rule = start if target is None else operating_point(clf, logits, y_true, *target, a.positive_label, start,
                                                        a.data_path)
    if abstain is not None:
        rule = dataclasses.replace(rule, abstain_below=abstain)
    summary = summarize(logits, y_true, rule, names)
    contract = clf.contract.replace(decision=rule.to_dict())
    if clf.long_text == "chunks":  # the rule holds for documents read this way: make it the model's default
        contract = contract.replace(long_text="chunks", stride=clf.encoder.stride)
    if a.report:
        _write_report(a, clf, logits, y_true, summary)
    save_contract(a.model_path, contract)
    print(format_decision(summary, len(y_true), a.data_path))
    print(f"saved in {os.path.join(a.model_path, 'm3cls.json')}; predict, evaluate, serve and export apply it")
    return 0


def _write_report(a, clf, logits, y_true, summary: dict) -> None:
    from ..evaluation.evaluate import small_file_warning
    from ..metrics.calibration import evaluate_logits
    from ..reports.pages import write_report

    evaluation = evaluate_logits(logits, y_true, clf.labels.names, clf.temperature)
    small = small_file_warning(len(y_true))
    write_report(a.report, evaluation, title=f"m3cls calibrate: {a.model_path} on {a.data_path}",
                 extra=decision_extra(clf, logits, y_true, summary), method=clf.contract.method_title,
                 warnings=[small] if small else None)


def decision_extra(clf, logits, y_true, summary: dict | None):
    """The report's decision section for ``write_report(extra=...)``."""
    from ..reports.decisions import decision_section

    rule = clf.rule if summary is None else DecisionRule(**summary["rule"])
    points = risk_coverage(logits, y_true, clf.temperature)
    summary = summary or summarize(logits, y_true, rule, clf.labels.names)
    scores = y = None
    if rule.positive_label is not None:
        pos = clf.labels.names.index(rule.positive_label)
        scores, y = softmax(logits, rule.temperature)[:, pos], (np.asarray(y_true) == pos).astype(int)
    return lambda plt, folder: decision_section(plt, folder, summary, points, scores, y)


def format_decision(summary: dict, n: int, where: str) -> str:
    rule, lines = summary["rule"], []
    point, target = summary.get("operating_point"), rule.get("target") or {}
    if point is not None:
        head = f"{rule['positive_label']} when its probability >= {rule['threshold']:.6f}"
        if target:
            head += f" (chosen for {target['metric']} {'<=' if target['metric'] == 'fpr' else '>='} " \
                    f"{target['value']:g} on {target['fitted_on']})"
        lines.append(head)
        for metric in ("fpr", "recall", "precision"):
            lo, hi = point["intervals"][metric]
            lines.append(f"  {metric:<10}{point[metric]:.4f}   95% interval {lo:.4f} to {hi:.4f}")
        lines.append(f"  on {n} texts of {where}: {point['positives']} {rule['positive_label']}, "
                     f"{point['negatives']} others; intervals: {INTERVAL_METHOD}")
    if rule.get("abstain_below") is not None:
        accuracy = summary["accuracy_covered"]
        lines.append(f"abstain below {rule['abstain_below']:g}: {summary['coverage']:.1%} of texts decided, "
                     f"accuracy on them {'n/a' if accuracy is None else f'{accuracy:.4f}'}")
    return "\n".join(lines)


def format_risk_coverage(risk: dict) -> str:
    points = risk["points"]
    lines = [f"risk-coverage (abstain below a confidence; area under the risk curve {risk['aurc']:.4f}):",
             f"  {'coverage':>9} {'accuracy':>9} {'abstain below':>14}"]
    for share in (1.0, 0.9, 0.8, 0.5):
        best = min(points, key=lambda p: abs(p["coverage"] - share))
        lines.append(f"  {best['coverage']:>9.3f} {best['accuracy']:>9.4f} {best['abstain_below']:>14.4f}")
    return "\n".join(lines)

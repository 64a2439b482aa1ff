"""``m3cls stress``: apply cheap, seeded perturbations to labelled texts and report what they do to a model."""

from __future__ import annotations

import argparse
import logging
import sys

from ..files import write_json
from .common import add_model_flags, add_read_flags, check_writable
from .helpfmt import finish

logger = logging.getLogger("m3cls")


def stress_parser() -> argparse.ArgumentParser:
    from ..data.perturb import PERTURBATIONS

    p = argparse.ArgumentParser(prog="m3cls stress", description=(
        "Apply deterministic, seeded perturbations (homoglyphs, zero-width characters, whitespace, punctuation "
        "width, case, typos, word deletion, sentence order, truncation, simplified/traditional Chinese) to "
        "labelled texts and report what each one changes: the share of decisions it flips (single-label: the "
        "label; multi-label: the set of labels) or, for regression, how far the predictions move; and the model's "
        "own scores after it (accuracy and detection; multi-label F1s; RMSE, MAE, correlations)."))
    add_model_flags(p)
    p.add_argument("--data_path", required=True, help="labelled data, in any m3cls format")
    p.add_argument("--perturbations", default="all",
                   help=f"comma-separated, from: {', '.join(PERTURBATIONS)} (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the perturbations' seed (same seed, same texts)")
    p.add_argument("--positive_label", help="single-label models: also score detection of this label: detection "
                                            "rate, FPR, TPR at FPR 1%% and 5%% (thresholds from the clean texts), "
                                            "AUROC (default: the saved decision rule's positive label, if any)")
    p.add_argument("--output", help="write the results as JSON to this file")
    p.add_argument("--report", help="write an HTML page (table and a plot of the flip or shift rates) into this "
                                    "folder")
    add_read_flags(p)
    return finish(p, "stress")


def cmd_stress(argv: list[str]) -> int:
    from ..data.perturb import parse_perturbations
    from ..evaluation.stress import format_stress, stress_test
    from .operating import check_positive
    from .trust import load_labelled

    a = stress_parser().parse_args(argv)
    names = parse_perturbations(a.perturbations)
    check_writable(a.output)
    clf, texts, y_true, _ = load_labelled(a)
    if a.positive_label:
        clf.task.refuse("detection", a.model_path)
    positive = a.positive_label or clf.rule.positive_label
    check_positive(positive, clf.labels.names, a.model_path)
    result = stress_test(clf, texts, y_true, names, a.seed, positive)
    for name, why in result["skipped"].items():
        print(f"m3cls stress: skipped {name}: {why}", file=sys.stderr)
    print(format_stress(result))
    if a.output:
        write_json(a.output, result)
        logger.info("wrote %s", a.output)
    if a.report:
        from ..reports.stress import write_stress_report

        page = write_stress_report(a.report, result, f"m3cls stress: {a.model_path} on {a.data_path}")
        logger.info("report written to %s", page)
    return 0


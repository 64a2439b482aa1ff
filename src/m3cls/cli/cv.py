"""``m3cls cv``: K-fold cross-validation of the probe or of fine-tuning, with out-of-fold probabilities."""

from __future__ import annotations

import json
import logging

from .common import parse_train_args, train_parser

logger = logging.getLogger("m3cls")


DESCRIPTION = ("Cross-validate the probe (--method probe) or fine-tuning: the mean and spread of accuracy and "
               "macro-F1 over K folds, and out-of-fold probabilities for every text. Takes every 'm3cls train' flag.")


def cv_parser():
    from ..training.crossval import CVSettings

    return train_parser((CVSettings,), "m3cls cv", DESCRIPTION)


def cmd_cv(argv: list[str]) -> int:
    from ..training.crossval import CVSettings, run_cv, write_cv
    from ..training.save import check_output_dir

    request, (settings,) = parse_train_args(argv, (CVSettings,), "m3cls cv", DESCRIPTION)
    out = request.output_dir
    check_output_dir(out, request.config.overwrite_output_dir, request.config.model_name_or_path)
    result = run_cv(request, settings=settings)
    paths = write_cv(out, result, request.config.report)
    logger.info("wrote %s", ", ".join(paths))
    s = result.summary
    print(json.dumps({"output_dir": out, "folds": s["k"], "method": s["method"],
                      "accuracy_mean": round(s["accuracy_mean"], 4), "accuracy_std": round(s["accuracy_std"], 4),
                      "macro_f1_mean": round(s["macro_f1_mean"], 4), "macro_f1_std": round(s["macro_f1_std"], 4)}))
    if "slices" in s:
        from ..evaluation.slices import format_slices

        print(format_slices(s))
    if "holdout" in s:
        from ..training.holdout import format_holdout

        print(format_holdout(s["holdout"]))
    return 0

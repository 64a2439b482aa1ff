"""``m3cls cv``: K-fold cross-validation of the probe or of fine-tuning, with out-of-fold probabilities."""

from __future__ import annotations

import json
import logging

from .common import parse_train_args

logger = logging.getLogger("m3cls")


def cmd_cv(argv: list[str]) -> int:
    from ..training.crossval import CVSettings, run_cv, write_cv
    from ..training.save import check_output_dir

    config, values, explicit, (settings,) = parse_train_args(
        argv, (CVSettings,), "m3cls cv", "Cross-validate the probe (--method probe) or fine-tuning: the mean and "
        "spread of accuracy and macro-F1 over K folds, and out-of-fold probabilities for every text. Takes every "
        "'m3cls train' flag.")
    check_output_dir(values["output_dir"], config.overwrite_output_dir)
    result = run_cv(config, values, explicit, settings)
    paths = write_cv(values["output_dir"], result, config.report)
    logger.info("wrote %s", ", ".join(paths))
    s = result.summary
    print(json.dumps({"output_dir": values["output_dir"], "folds": s["k"], "method": s["method"],
                      "accuracy_mean": round(s["accuracy_mean"], 4), "accuracy_std": round(s["accuracy_std"], 4),
                      "macro_f1_mean": round(s["macro_f1_mean"], 4), "macro_f1_std": round(s["macro_f1_std"], 4)}))
    if "slices" in s:
        from ..evaluation.slices import format_slices

        print(format_slices(s))
    if "holdout" in s:
        from ..training.holdout import format_holdout

        print(format_holdout(s["holdout"]))
    return 0

"""``m3cls audit``: rank likely label errors from out-of-fold probabilities, duplicates and near-duplicates."""

from __future__ import annotations

import json
import logging
import os

from .common import parse_train_args, train_parser, write_jsonl

logger = logging.getLogger("m3cls")
SUSPECTS_FILE = "suspects.jsonl"


DESCRIPTION = ("Find likely label errors in --data_path: cross-validate (the probe by default, --method finetune "
               "also works), then rank records by their out-of-fold probabilities; flag identical texts with "
               "different labels and near-duplicates by embedding cosine. Takes every 'm3cls cv' flag.")


def audit_parser():
    from ..evaluation.audit import AuditSettings
    from ..training.crossval import CVSettings

    return train_parser((CVSettings, AuditSettings), "m3cls audit", DESCRIPTION)


def cmd_audit(argv: list[str]) -> int:
    from ..evaluation.audit import AuditSettings, find_suspects
    from ..files import require, write_json
    from ..training.crossval import CVSettings, run_cv, write_cv
    from ..training.save import check_output_dir

    request, (cv_settings, settings) = parse_train_args(
        argv, (CVSettings, AuditSettings), "m3cls audit", DESCRIPTION,
        defaults={"method": "probe"})  # the audit's default: K folds for the price of one embedding pass
    config, values = request.config, request.values
    settings.check()
    require("cleanlab", "audit", "the label audit")  # before hours of cross-validation, not after
    out = request.output_dir
    check_output_dir(out, config.overwrite_output_dir, config.model_name_or_path)
    result = run_cv(request, settings=cv_settings, what="m3cls audit")
    embeddings = result.embeddings
    if embeddings is None:  # fine-tuned folds: near-duplicates by the base encoder's embeddings
        from dataclasses import replace

        from ..training.probe import make_embedder

        embeddings = make_embedder(replace(config, long_text="truncate"), values).embed(result.data.texts)
    suspects, summary = find_suspects(result.data.texts, result.y, result.labels.names, result.probabilities,
                                      embeddings, settings.near_duplicate_cosine)
    summary = dict(summary, method=f"{result.summary['k']}-fold {result.summary['method']}",
                   data_path=config.data_path)
    write_cv(out, result, report=False)
    path = os.path.join(out, SUSPECTS_FILE)
    write_jsonl(path, suspects)
    write_json(os.path.join(out, "audit.json"), summary, "--output_dir")
    if config.report:
        from ..reports.pages import audit_section
        from ..training.crossval import write_cv_report

        page = write_cv_report(os.path.join(out, "report"), result, [audit_section(summary, suspects)])
        logger.info("report written to %s", page)
    for s in suspects[:5]:
        logger.info("suspect: record %d, given %r, suggested %r, score %.3f (%s): %s", s["index"], s["given_label"],
                    s["suggested_label"], s["score"], ", ".join(s["reasons"]), s["text"][:60])
    print(json.dumps({"output_dir": out, "suspects_file": path, "records": summary["records"],
                      "suspects": summary["suspects"], **summary["counts"]}))
    return 0

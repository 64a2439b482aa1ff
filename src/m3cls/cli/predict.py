"""``m3cls predict``: one text in the reference's printout, or a file streamed to JSONL in input order.

Each output line's ``index`` is its record's position in the input; a bad record stops the run or, with
``--on_error skip``, gets an ``{"index": i, "error": ...}`` line. Every line carries the text's unknown-token
share, and texts the model's vocabulary cannot read get a warning on stderr. The saved decision rule (or
``--abstain_below``) adds ``decision``; ``--segments`` and ``--explain`` add ``segments`` and ``attributions``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Iterable, Iterator

from ..data.inspection import UnknownTally, training_unknown_share, unknown_text_warning
from ..data.readers import Item, iter_items
from ..errors import ConfigError, DataError
from ..inference import distributed
from .common import (
    add_decision_flags,
    add_model_flags,
    add_read_flags,
    add_threshold_flag,
    check_writable,
    is_parquet,
    load_classifier,
    parse_temperature,
    read_options,
    write_jsonl,
    write_rows,
)
from .helpfmt import finish
from .onerror import BadRecords, add_error_flags
from .rows import count_records, is_csv, rounded, with_progress, write_csv

logger = logging.getLogger("m3cls")


#: records read and predicted together; a stop (--on_error stop) writes every record before the bad one first
BLOCK_SIZE = 2048


def predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls predict", description="Classify texts with a fine-tuned model.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one text to classify")
    src.add_argument("--input", help="file of texts (any m3cls format, or .txt one per line); - for stdin")
    p.add_argument("--output", default="-", help="output for --input: JSONL, CSV when it ends in .csv, Parquet "
                                                 "when it ends in .parquet; - for stdout (default)")
    p.add_argument("--include_text", action="store_true", help="copy each record's text into its output line")
    p.add_argument("--temperature", default="auto",
                   help="softmax temperature above 0, or 'auto' for the one saved with the model (default)")
    p.add_argument("--json", action="store_true", help="with --text: print one JSON object")
    p.add_argument("--segments", action="store_true",
                   help="with --long_text chunks: add each window's character span and probabilities")
    p.add_argument("--explain", action="store_true",
                   help="add 'attributions': each word's effect on the decided label (word occlusion; one "
                        "model pass per word)")
    p.add_argument("--explain_html", help="write the texts shaded by their attributions to this HTML file "
                                          "(implies --explain)")
    add_decision_flags(p)
    add_error_flags(p)
    add_model_flags(p)
    add_threshold_flag(p)
    add_read_flags(p, skip=("label_column", "group_column"))
    return finish(p, "predict")


def cmd_predict(argv: list[str]) -> int:
    a = predict_parser().parse_args(argv)
    temperature = parse_temperature(a.temperature)
    if a.text is not None and not a.text.strip():
        raise ConfigError("--text is empty; give the text to classify")
    if a.text is not None and (a.on_error != "stop" or a.max_errors is not None):
        raise ConfigError("--on_error and --max_errors apply to --input; a bad --text is always an error")
    if a.input and a.input != "-" and not os.path.exists(a.input):
        raise ConfigError(f"--input {a.input}: file not found")
    policy = BadRecords.from_args(a, a.input or "-")
    check_writable(a.explain_html)
    explain = a.explain or bool(a.explain_html)
    rank, size = distributed.world()
    if a.explain_html and size > 1:
        raise ConfigError("--explain_html is one page written by one process; run without torchrun, or use "
                          "--explain (each line's attributions)")
    clf = load_classifier(a)
    clf.check_request(temperature, explain)  # before any record is read
    training_share = training_unknown_share(clf.contract.info)
    if a.text is not None:
        return _predict_text(a, clf, temperature, training_share, explain)
    items = policy.check(iter_items(a.input, read_options(a, clf.contract.read_options), keep_bad=True))
    if size > 1:
        return _predict_distributed(a, clf, items, temperature, rank, size, policy, training_share, explain)
    tally = UnknownTally()
    shown: list | None = [] if a.explain_html else None  # explaining is slow, so such files are small
    rows = prediction_rows(clf, items, temperature, tally, explain=explain, shown=shown, include_text=a.include_text)
    count = _write(a, rows)
    logger.info("wrote %d %s to %s", count, "lines" if a.output == "-" or a.output.endswith(".jsonl") else "rows",
                "stdout" if a.output == "-" else a.output)
    _write_explanations(a.explain_html, shown)
    _report(policy, tally, training_share)
    return 0


def _write(a, rows: Iterator[dict]) -> int:
    """Rows to --output (JSONL, CSV, Parquet or stdout); at a terminal with a bar on stderr, rounded on stdout."""
    if sys.stderr.isatty():
        rows = with_progress(rows, count_records(a.input))
    if a.output == "-" and sys.stdout.isatty():
        rows = rounded(rows)
    if is_csv(a.output):
        return write_csv(a.output, rows)
    return write_rows(a.output, _for_parquet(rows) if is_parquet(a.output) else rows)


def _predict_text(a, clf, temperature, training_share: float | None, explain: bool = False) -> int:
    (prediction,), (share,) = clf.predict_and_count([a.text], temperature, explain)
    t = clf.temperature if temperature is None else temperature
    print(json.dumps(dict(prediction.to_dict(0), unknown_token_share=round(share, 4)), ensure_ascii=False)
          if a.json else clf.task.format_prediction(a.text, t, prediction, clf.thresholds))
    warning = unknown_text_warning(share, training_share)
    if warning:
        print(f"m3cls predict: warning: {warning}", file=sys.stderr)
    _write_explanations(a.explain_html, [(a.text, prediction)])
    return 0


def _write_explanations(path: str | None, shown: list | None) -> None:
    if path:
        from ..inference.explain import write_html

        write_html(path, shown or [])
        logger.info("wrote the shaded texts to %s", path)


def _for_parquet(rows: Iterable[dict]) -> Iterator[dict]:
    """Parquet columns hold one type: each ``[word, score]`` pair of ``attributions`` becomes a struct."""
    for row in rows:
        if "attributions" in row:
            row = dict(row, attributions=[{"word": w, "score": s} for w, s in row["attributions"]])
        yield row


def prediction_rows(clf, items: Iterable[Item], temperature: float | None, tally: UnknownTally,
                    block_size: int = BLOCK_SIZE, explain: bool = False, shown: list | None = None,
                    include_text: bool = False) -> Iterator[dict]:
    """One output row per record, in input order: its prediction and unknown-token share, or its error.

    ``index`` is the record's position in the input (``Item.position``), whatever came before it. With
    ``explain`` rows carry ``attributions``; ``shown``, when a list, collects each (text, prediction);
    ``include_text`` adds each record's ``text``.
    """
    for block in _blocks(items, block_size):
        texts = [item.text for item in block if item.error is None]
        done, counted = clf.predict_and_count(texts, temperature, explain)  # one pass of the tokenizer
        if shown is not None:
            shown.extend(zip(texts, done))
        predictions, shares = iter(done), iter(counted)
        for item in block:
            if item.error is not None:
                yield {"index": item.position, "error": item.error}
                continue
            share = next(shares)
            tally.add(item.position, share)
            row = dict(next(predictions).to_dict(item.position), unknown_token_share=round(share, 4))
            yield dict(row, text=item.text) if include_text else row


def _blocks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Lists of up to ``size`` items; when reading stops on an error, the items before it still come out."""
    block: list[Item] = []
    failure = None
    try:
        for item in items:
            block.append(item)
            if len(block) == size:
                yield block
                block = []
    except DataError as e:
        failure = e
    if block:
        yield block
    if failure is not None:
        raise failure


def _report(policy: BadRecords | None, tally: UnknownTally, training_share: float | None, rank: str = "") -> None:
    """The closing lines on stderr: the --on_error skip summary and the unknown-token warning."""
    if policy is not None and policy.skipping:
        print(f"m3cls predict: {rank}{policy.summary()}", file=sys.stderr)
    warning = tally.warning(training_share)
    if warning:
        print(f"m3cls predict: {rank}warning: {warning}; each line's unknown_token_share says which",
              file=sys.stderr)


def _predict_distributed(a, clf, items, temperature, rank: int, size: int, policy: BadRecords,
                         training_share: float | None, explain: bool = False) -> int:
    """Under torchrun: this rank predicts every size-th record; rank 0 merges all ranks into --output.

    Every rank reads every record, so each applies --on_error to the whole input and stops at the same record.
    """
    if a.output == "-" or a.input == "-" or is_parquet(a.output) or is_csv(a.output):
        raise ConfigError("with torchrun, --input and --output must be files (not -), and --output JSONL")
    distributed.init_process_group()
    mine = distributed.shard(items, rank, size)
    tally = UnknownTally()
    count = write_jsonl(distributed.part_path(a.output, rank),
                        prediction_rows(clf, mine, temperature, tally, explain=explain, include_text=a.include_text))
    logger.info("rank %d/%d wrote %d lines", rank, size, count)
    distributed.barrier()
    if rank == 0:
        total = distributed.interleave(a.output, size)
        logger.info("wrote %d lines from %d processes to %s", total, size, a.output)
    _report(policy if rank == 0 else None, tally, training_share, f"rank {rank}: ")  # rank 0 sums up the input
    distributed.finish()
    return 0

"""``m3cls predict``: one text in the reference's printout, or a file streamed to JSONL in input order."""

from __future__ import annotations

import argparse
import json
import logging
import os

from .. import distributed
from ..data import iter_items
from ..errors import ConfigError
from .common import (
    add_model_flags,
    add_read_flags,
    add_threshold_flag,
    format_temperature,
    load_classifier,
    parse_temperature,
    read_options,
    write_jsonl,
)
from .task_views import format_task_prediction

logger = logging.getLogger("m3cls")


def predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls predict", description="Classify texts with a fine-tuned model.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one text to classify")
    src.add_argument("--input", help="file of texts (any m3cls format, or .txt one per line); - for stdin")
    p.add_argument("--output", default="-", help="JSONL output for --input; - for stdout (default)")
    p.add_argument("--temperature", default="auto",
                   help="softmax temperature above 0, or 'auto' for the one saved with the model (default)")
    p.add_argument("--json", action="store_true", help="with --text: print one JSON object")
    add_model_flags(p)
    add_threshold_flag(p)
    add_read_flags(p)
    return p


def cmd_predict(argv: list[str]) -> int:
    a = predict_parser().parse_args(argv)
    temperature = parse_temperature(a.temperature)
    if a.text is not None and not a.text.strip():
        raise ConfigError("--text is empty; give the text to classify")
    if a.input and a.input != "-" and not os.path.exists(a.input):
        raise ConfigError(f"--input {a.input}: file not found")
    clf = load_classifier(a)
    if temperature is not None and clf.contract.task == "regression":
        raise ConfigError("--temperature scales probabilities; a regression model predicts a number -- drop it")
    if a.text is not None:
        prediction = clf.predict([a.text], temperature)[0]
        t = clf.temperature if temperature is None else temperature
        print(json.dumps(prediction.to_dict(0), ensure_ascii=False) if a.json
              else format_prediction(a.text, t, prediction) if prediction.label is not None
              else format_task_prediction(a.text, t, prediction, clf.thresholds))
        return 0
    texts = (item.text for item in iter_items(a.input, read_options(a, clf.contract.read_options)))
    rank, size = distributed.world()
    if size > 1:
        return _predict_distributed(a, clf, texts, temperature, rank, size)
    count = write_jsonl(a.output, (p.to_dict(i) for i, p in enumerate(clf.predict_stream(texts, temperature))))
    logger.info("wrote %d predictions to %s", count, "stdout" if a.output == "-" else a.output)
    return 0


def _predict_distributed(a, clf, texts, temperature, rank: int, size: int) -> int:
    """Under torchrun: this rank predicts every size-th text; rank 0 merges all ranks into --output."""
    if a.output == "-" or a.input == "-":
        raise ConfigError("with torchrun, --input and --output must be files (not -)")
    distributed.init_process_group()
    mine = distributed.shard(texts, rank, size)
    count = write_jsonl(distributed.part_path(a.output, rank),
                        (p.to_dict() for p in clf.predict_stream(mine, temperature)))
    logger.info("rank %d/%d predicted %d texts", rank, size, count)
    distributed.barrier()
    if rank == 0:
        total = distributed.interleave(a.output, size)
        logger.info("wrote %d predictions from %d processes to %s", total, size, a.output)
    distributed.finish()
    return 0


def format_prediction(text: str, temperature: float, prediction) -> str:
    """The reference script's printout: the text, the temperature, the label, every label's probability."""
    width = max(len(name) for name in prediction.probabilities)
    lines = [f"Text: {text}", f"Temperature: {format_temperature(temperature)}",
             f"Predicted label: {prediction.label} (id {prediction.label_id})", "Probabilities:"]
    lines += [f"  {name:<{width}}  {p:.4f}" for name, p in prediction.probabilities.items()]
    return "\n".join(lines)

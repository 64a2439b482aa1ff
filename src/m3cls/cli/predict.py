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
    add_decision_flags,
    add_model_flags,
    add_read_flags,
    check_writable,
    format_temperature,
    load_classifier,
    parse_temperature,
    read_options,
    write_jsonl,
)

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
    p.add_argument("--segments", action="store_true",
                   help="with --long_text chunks: add each window's character span and probabilities")
    p.add_argument("--explain", action="store_true",
                   help="add 'attributions': each word's effect on the decided label (word occlusion; one "
                        "model pass per word)")
    p.add_argument("--explain_html", help="write the texts shaded by their attributions to this HTML file "
                                          "(implies --explain)")
    add_decision_flags(p)
    add_model_flags(p)
    add_read_flags(p)
    return p


def cmd_predict(argv: list[str]) -> int:
    a = predict_parser().parse_args(argv)
    temperature = parse_temperature(a.temperature)
    if a.text is not None and not a.text.strip():
        raise ConfigError("--text is empty; give the text to classify")
    if a.input and a.input != "-" and not os.path.exists(a.input):
        raise ConfigError(f"--input {a.input}: file not found")
    check_writable(a.explain_html)
    explain = a.explain or bool(a.explain_html)
    clf = load_classifier(a)
    if a.text is not None:
        prediction = clf.predict([a.text], temperature, explain)[0]
        t = clf.temperature if temperature is None else temperature
        print(json.dumps(prediction.to_dict(0), ensure_ascii=False) if a.json
              else format_prediction(a.text, t, prediction))
        _write_explanations(a.explain_html, [a.text], [prediction])
        return 0
    texts = (item.text for item in iter_items(a.input, read_options(a, clf.contract.read_options)))
    rank, size = distributed.world()
    if size > 1:
        return _predict_distributed(a, clf, texts, temperature, rank, size, explain)
    if a.explain_html:  # the page needs every text with its prediction; explaining is slow, files are small
        texts = list(texts)
        predictions = list(clf.predict_stream(texts, temperature, explain=True))
        count = write_jsonl(a.output, (p.to_dict(i) for i, p in enumerate(predictions)))
        _write_explanations(a.explain_html, texts, predictions)
    else:
        count = write_jsonl(a.output, (p.to_dict(i) for i, p in
                                       enumerate(clf.predict_stream(texts, temperature, explain=explain))))
    logger.info("wrote %d predictions to %s", count, "stdout" if a.output == "-" else a.output)
    return 0


def _write_explanations(path: str | None, texts: list[str], predictions: list) -> None:
    if path:
        from ..explain import write_html

        write_html(path, list(zip(texts, predictions)))
        logger.info("wrote the shaded texts to %s", path)


def _predict_distributed(a, clf, texts, temperature, rank: int, size: int, explain: bool = False) -> int:
    """Under torchrun: this rank predicts every size-th text; rank 0 merges all ranks into --output."""
    if a.output == "-" or a.input == "-":
        raise ConfigError("with torchrun, --input and --output must be files (not -)")
    distributed.init_process_group()
    mine = distributed.shard(texts, rank, size)
    count = write_jsonl(distributed.part_path(a.output, rank),
                        (p.to_dict() for p in clf.predict_stream(mine, temperature, explain=explain)))
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
    if prediction.decision is not None:
        lines.append(f"Decision: {prediction.decision}")
    if prediction.segments:
        lines.append("Segments (characters: top label and its probability):")
    for segment in prediction.segments or []:
        best = max(segment["probabilities"], key=segment["probabilities"].get)
        lines.append(f"  chars {segment['start']}-{segment['end']}: {best} {segment['probabilities'][best]:.4f}")
    if prediction.attributions:
        top = sorted(prediction.attributions, key=lambda w: -abs(w[1]))[:10]
        lines.append(f"Words that moved {prediction.decision or prediction.label} most: "
                     + ", ".join(f"{w} {s:+.4f}" for w, s in top))
    return "\n".join(lines)

"""``m3cls select``: which pool texts to label next, most useful first (:mod:`m3cls.evaluation.selection`)."""

from __future__ import annotations

import argparse
import json
import logging

from .common import add_read_flags, check_writable, read_options, write_jsonl
from .helpfmt import finish

logger = logging.getLogger("m3cls")

RULES = ("hybrid (default): uncertainty-weighted k-center greedy on the encoder's embeddings -- repeatedly the "
         "text with the highest uncertainty x cosine distance to the nearest labelled, excluded or already chosen "
         "text, so near-identical texts are not both chosen; uncertainty: 1 - (top probability - second) "
         "(multi-label: mean of 1 - |2p - 1| over labels); diversity: k-center greedy on distance alone; random: "
         "a seeded shuffle; disagreement: (annotator disagreement + uncertainty) / 2, where disagreement is "
         "1 - the share of a text's most frequent label among its annotators, scaled to [0, 1]")


def select_parser() -> argparse.ArgumentParser:
    from ..evaluation.selection import STRATEGIES

    p = argparse.ArgumentParser(prog="m3cls select", description=(
        "Choose the texts to label next from an unlabelled --pool, with a saved model (--model_path) or an "
        "encoder plus the texts labelled so far (--model_name_or_path with --labelled: a probe is fitted on "
        "the fly). Writes one JSON line per chosen text: index (its position in the pool), text, score, reason, "
        "uncertainty, margin, entropy, distance and probabilities, most useful first. Embeddings (and a saved "
        "model's logits) are cached, so the next round over the same pool computes nothing again. "
        f"Strategies: {RULES}."))
    p.add_argument("--model_path", help="a model folder from 'm3cls train' (fine-tuned, probe, LoRA or ONNX export)")
    p.add_argument("--model_name_or_path", help="an encoder (folder, Hub name or 'bundled'); needs --labelled")
    p.add_argument("--labelled", help="the texts labelled so far (any input format); with --model_name_or_path "
                                      "the probe is fitted on them; never chosen again, and diversity keeps "
                                      "away from them")
    p.add_argument("--pool", help="the unlabelled texts to choose from (any input format; labels ignored). "
                                  "--strategy disagreement: default the --labelled texts")
    p.add_argument("--budget", type=int, required=True, help="how many texts to choose")
    p.add_argument("--strategy", default="hybrid", choices=STRATEGIES, help="how to rank (see below)")
    p.add_argument("--exclude", help="a file of texts already labelled elsewhere: they and their near-duplicates "
                                     "are skipped")
    p.add_argument("--near_duplicate_cosine", type=float, default=0.95,
                   help="embedding cosine at or above which a pool text counts as a near-duplicate of an "
                        "--exclude text, and is skipped (default 0.95)")
    p.add_argument("--annotator_column", default="annotator",
                   help="--strategy disagreement: the field of --labelled naming who gave each label (one record "
                        "per text and annotator)")
    p.add_argument("--output", default="-", help="JSONL file for the chosen texts; - for stdout (default)")
    p.add_argument("--embed_model", help="the encoder whose embeddings measure distance (default: --model_path's "
                                         "own; needed for LoRA and ONNX folders)")
    p.add_argument("--max_length", type=int, default=512, help="tokens per text for --model_name_or_path "
                                                               "(a saved model uses its own)")
    p.add_argument("--pooling", default="auto", help="auto, cls, mean or max (encoders without a saved pooling)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--cache_dir", default=None, help="embedding cache folder (default: $M3CLS_CACHE or "
                                                     "~/.cache/m3cls)")
    p.add_argument("--seed", type=int, default=42, help="seed of --strategy random and of the probe")
    add_read_flags(p)
    return finish(p, "select")


def cmd_select(argv: list[str]) -> int:
    from ..evaluation.selection_run import SelectRequest, select
    from ..model.folder import read_contract

    a = select_parser().parse_args(argv)
    check_writable(a.output)
    saved = read_contract(a.model_path) if a.model_path else None
    request = SelectRequest(
        pool=a.pool, budget=a.budget, strategy=a.strategy, model_path=a.model_path,
        model_name_or_path=a.model_name_or_path, labelled=a.labelled, exclude=a.exclude,
        annotator_column=a.annotator_column, near_duplicate_cosine=a.near_duplicate_cosine, seed=a.seed,
        max_length=a.max_length, pooling=a.pooling, batch_size=a.batch_size, device=a.device,
        precision=a.precision, cache_dir=a.cache_dir, embed_model=a.embed_model,
        read=read_options(a, saved.read_options if saved else None))
    rows, summary = select(request)
    write_jsonl(a.output, rows)
    logger.info("chose %d of %d pool texts (%d candidates, %d near-duplicates of --exclude texts skipped) by %s",
                summary["chosen"], summary["pool"], summary["candidates"], summary["skipped_near_duplicates"],
                summary["strategy"])
    if a.output != "-":
        print(json.dumps({"output": a.output, **summary}))
    return 0

"""What several commands share: model and read flags, loading a Classifier, temperatures, output files."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from dataclasses import fields
from typing import Iterable, Iterator

from ..data.readers import FORMATS, ReadOptions
from ..errors import ConfigError
from ..files import atomic_open
from ..tasks.base import format_temperature  # noqa: F401 (the commands print temperatures)
from .helpfmt import HF_GROUP, finish, friendly

logger = logging.getLogger("m3cls")


@contextlib.contextmanager
def bar_safe_logging() -> Iterator[None]:
    """On a terminal, log lines go through tqdm's writer, so progress bars and log lines do not overwrite each
    other; elsewhere (no bars) nothing changes."""
    if not sys.stderr.isatty():
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The flags that load a Classifier, shared by predict, evaluate, calibrate and serve."""
    p.add_argument("--model_path", required=True, help="model folder from 'm3cls train' or a checkpoint folder")
    p.add_argument("--batch_size", type=int, default=32,
                   help="at most this many texts per model batch; on a CPU a batch also holds at most 4,096 tokens, "
                        "padding included (faster there; 'serve' batches by --max_batch_tokens instead)")
    p.add_argument("--max_length", type=int, default=None, help="tokens per text (default: the value saved at "
                                                                 "training)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="onnx: run a folder written by 'm3cls export' with onnxruntime")
    p.add_argument("--long_text", default=None, choices=("truncate", "chunks"),
                   help="chunks: classify overlapping max_length windows of a long text and average their "
                        "logits (default: the model's saved policy, truncate unless set)")
    p.add_argument("--stride", type=int, default=None,
                   help="tokens shared by neighbouring windows (chunks; default: the model's saved stride)")
    p.add_argument("--trust_remote_code", action="store_true", help="allow model code from the Hub")
    p.add_argument("--allow_pickle", action="store_true", help="allow pickle (.bin) weights")


def add_decision_flags(p: argparse.ArgumentParser) -> None:
    """How windows make a document, and abstention (predict, evaluate, calibrate)."""
    p.add_argument("--aggregate", default=None, choices=("mean", "max", "vote"),
                   help="with --long_text chunks: how window scores make the document's -- mean logits, the "
                        "window most likely the positive label ('is any part positive?'), or a vote "
                        "(default: the model's saved rule, else mean)")
    p.add_argument("--abstain_below", type=float, default=None,
                   help="mark a text 'uncertain' when its chosen label's probability is under this (0 to 1; "
                        "default: the model's saved rule, else never)")
def add_threshold_flag(p: argparse.ArgumentParser) -> None:
    """``--threshold``: one decision threshold for every label of a multi-label model."""
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label: predict every label whose probability reaches this (0 to 1), instead of "
                        "the per-label thresholds tuned at training")


def add_read_flags(p: argparse.ArgumentParser, saved_defaults: bool = True, skip: tuple[str, ...] = ()) -> None:
    """The read flags, from ``ReadOptions``; with ``saved_defaults`` an unset flag takes the model's saved value.

    ``skip`` leaves out flags a command does not use (predict reads no labels and no groups)."""
    for f in fields(ReadOptions):
        if f.name in skip:
            continue
        default = None if saved_defaults else f.default
        kind = str if f.default is None else type(f.default)
        extra = {"choices": FORMATS} if f.name == "data_format" else {"type": kind}
        note = " (default: as at training, else %r)" % f.default if saved_defaults else ""
        p.add_argument(f"--{f.name}", default=default, help=f.metadata["help"] + note, **extra)


def read_options(a: argparse.Namespace, saved: dict | None = None) -> ReadOptions:
    """The read flags given, else ``saved`` (a model's ``read_options``), else the defaults."""
    return ReadOptions.resolve(vars(a), saved)


def parse_temperature(value: str) -> float | None:
    from ..inference.classifier import check_temperature

    if value == "auto":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"--temperature {value!r} must be a number above 0 or 'auto'") from None
    return check_temperature(number)


def check_model_folder(path: str) -> None:
    if not os.path.isdir(path):
        raise ConfigError(f"--model_path {path}: no such folder; give the --output_dir of 'm3cls train' or one "
                          f"of its checkpoint-N folders")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(f"--model_path {path}: not a model folder (no config.json); give the --output_dir of "
                          f"'m3cls train' or one of its checkpoint-N folders")


def load_classifier(a: argparse.Namespace, folder=None):
    """The Classifier the model flags describe; the model's contract fills in what the flags leave unset.
    ``folder``: the ``--model_path`` folder when the caller has read it already."""
    from ..inference.classifier import Classifier
    from ..model.folder import ModelFolder

    check_model_folder(a.model_path)
    folder = ModelFolder.read(folder or a.model_path)
    if a.backend == "torch" and folder.kind == "onnx":
        raise ConfigError(f"--model_path {a.model_path} is an ONNX export; add --backend onnx")
    decisions = {k: getattr(a, k) for k in ("aggregate", "abstain_below", "segments") if getattr(a, k, None)}
    return Classifier.from_pretrained(folder, device=a.device, precision=a.precision,
                                      max_length=a.max_length, batch_size=a.batch_size,
                                      trust_remote_code=a.trust_remote_code, allow_pickle=a.allow_pickle,
                                      long_text=a.long_text, stride=a.stride, backend=a.backend,
                                      threshold=getattr(a, "threshold", None), **decisions)


def write_jsonl(path: str, rows: Iterable[dict]) -> int:
    """Write rows as they come; a file appears under its name only once complete (``-`` is stdout, where the
    lines written before an error stay written)."""
    count = 0
    if path == "-":
        try:
            for count, row in enumerate(rows, 1):
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                if count % 256 == 0:
                    sys.stdout.flush()
        finally:  # on an error too: the complete lines before it are out before the error line on stderr
            sys.stdout.flush()
        return count
    with atomic_open(path) as f:
        for count, row in enumerate(rows, 1):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return count


def is_parquet(path: str) -> bool:
    """True when results for ``path`` are written as Parquet (.parquet/.pq)."""
    from ..data.sources import PARQUET_EXTENSIONS

    return path != "-" and path.lower().endswith(PARQUET_EXTENSIONS)


def write_rows(path: str, rows: Iterable[dict]) -> int:
    """Write result rows as Parquet when ``path`` ends in .parquet/.pq, else as JSONL (``-``: stdout)."""
    if is_parquet(path):
        from ..data.sources import write_parquet

        return write_parquet(path, rows)
    return write_jsonl(path, rows)


def check_writable(path: str | None) -> None:
    """Fail before any work when an output file's folder does not exist."""
    if path and path != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        from ..errors import OutputError

        raise OutputError(f"{path}: its folder does not exist; create it or choose another --output")


def train_parser(extra: tuple = (), prog: str = "m3cls train", description: str | None = None):
    """m3cls' flags (TrainConfig, then the ``extra`` dataclasses) and every transformers TrainingArguments flag,
    with m3cls' defaults, and ``--config FILE``."""
    from transformers import HfArgumentParser, TrainingArguments

    from ..training import TrainConfig
    from ..training.args import TRAIN_DEFAULTS, cpu_defaults

    parser = HfArgumentParser((TrainConfig, *extra, TrainingArguments), prog=prog, description=description or (
        "Fine-tune a sequence classifier (or fit a probe on a frozen encoder: --method probe). m3cls' own flags "
        "first, by group, then every other Hugging Face TrainingArguments flag."))
    parser.set_defaults(**cpu_defaults(), **TRAIN_DEFAULTS)
    parser.add_argument("--config", help="a YAML or JSON file of train flags (flags typed here override it), "
                                         "e.g. a model folder's train_config.yaml")
    return finish(parser, prog.split()[-1], HF_GROUP)


def parse_train_args(argv: list[str], extra: tuple = (), prog: str = "m3cls train", description: str | None = None,
                     defaults: dict | None = None):
    """(the TrainRequest, checked: m3cls' settings, TrainingArguments values and the flags typed or in --config;
    the ``extra`` dataclasses).

    The TrainingArguments are built later, once, from the values. A ``--config`` file's flags go before the
    typed ones, so typed flags win; ``defaults`` are the command's own defaults for train flags.
    """
    from transformers import TrainingArguments

    from ..training import TrainConfig
    from ..training.request import TrainRequest

    parser = train_parser(extra, prog, description)
    argv, direct = config_file_argv(argv, parser)
    explicit = frozenset(a[2:].split("=")[0] for a in argv if a.startswith("--")) | set(direct)
    parser.set_defaults(**{**(defaults or {}), **direct})
    namespace = vars(parser.parse_args(argv))
    config = TrainConfig(**{f.name: namespace[f.name] for f in fields(TrainConfig)})
    others = [cls(**{f.name: namespace[f.name] for f in fields(cls)}) for cls in extra]
    values = {f.name: namespace[f.name] for f in fields(TrainingArguments) if f.init and f.name in namespace}
    if not values.get("output_dir") or "output_dir" not in explicit:
        what = "trained model" if prog == "m3cls train" else "results"
        raise ConfigError(f"--output_dir is required: the folder for the {what}")
    return TrainRequest.build(config, values, explicit), others


def config_file_argv(argv: list[str], parser) -> tuple[list[str], dict]:
    """``argv`` with a ``--config`` file's flags put first, and the values no token can carry (lists)."""
    from ..training.runconfig import check_keys, load_config_file, to_argv

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)
    if not known.config:
        return argv, {}
    values = load_config_file(known.config)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    check_keys(values, actions, known.config)
    if values.get("search_space") is not None:
        logger.info("%s: search_space is read by 'm3cls tune'; train ignores it", known.config)
    tokens, direct = to_argv(values, actions)
    parser.error = _config_value_error(parser, known.config, set(values), rest)
    return tokens + rest, direct


def _config_value_error(parser, path: str, keys: set[str], typed: list[str]):
    """argparse's error for a bad value, as one line naming the config file when the value came from it."""
    import re

    typed_flags = {a[2:].split("=")[0].replace("-", "_") for a in typed if a.startswith("--")}

    def error(message: str):
        found = re.match(r"argument --(\w+)", message)
        name = found.group(1) if found else None
        if name in keys and name not in typed_flags:
            raise ConfigError(f"{path}: {name}: {message.split(': ', 1)[-1]}")
        raise ConfigError(f"{friendly(parser, message)} (with --config {path})")

    return error

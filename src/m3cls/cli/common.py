"""What several commands share: model and read flags, loading a Classifier, temperatures, output files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from typing import Iterable

from ..data import FORMATS, ReadOptions
from ..errors import ConfigError
from ..files import atomic_open


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The flags that load a Classifier, shared by predict, evaluate, calibrate and serve."""
    p.add_argument("--model_path", required=True, help="model folder from 'm3cls train' or a checkpoint folder")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_length", type=int, default=None, help="default: the value saved at training")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="onnx: run a folder written by 'm3cls export' with onnxruntime")
    p.add_argument("--long_text", default=None, choices=("truncate", "chunks"),
                   help="chunks: classify overlapping max_length windows of a long text and average their "
                        "logits (default: the model's saved policy, truncate unless set)")
    p.add_argument("--stride", type=int, default=None,
                   help="tokens shared by neighbouring windows (chunks; default: the model's saved stride)")
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--allow_pickle", action="store_true")


def add_threshold_flag(p: argparse.ArgumentParser) -> None:
    """``--threshold``: one decision threshold for every label of a multi-label model."""
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label: predict every label whose probability reaches this (0 to 1), instead of "
                        "the per-label thresholds tuned at training")


def add_read_flags(p: argparse.ArgumentParser, saved_defaults: bool = True) -> None:
    """The read flags, from ``ReadOptions``; with ``saved_defaults`` an unset flag takes the model's saved value."""
    for f in fields(ReadOptions):
        default = None if saved_defaults else f.default
        kind = str if f.default is None else type(f.default)
        extra = {"choices": FORMATS} if f.name == "data_format" else {"type": kind}
        note = " (default: as at training, else %r)" % f.default if saved_defaults else ""
        p.add_argument(f"--{f.name}", default=default, help=f.metadata["help"] + note, **extra)


def read_options(a: argparse.Namespace, saved: dict | None = None) -> ReadOptions:
    """The read flags given, else ``saved`` (a model's ``read_options``), else the defaults."""
    return ReadOptions.resolve(vars(a), saved)


def parse_temperature(value: str) -> float | None:
    from ..inference import check_temperature

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


def load_classifier(a: argparse.Namespace):
    """The Classifier the model flags describe; the model's contract fills in what the flags leave unset."""
    from ..inference import Classifier

    check_model_folder(a.model_path)
    names = os.listdir(a.model_path)
    if a.backend == "torch" and "model.onnx" in names and not any(n.endswith(".safetensors") for n in names):
        raise ConfigError(f"--model_path {a.model_path} is an ONNX export; add --backend onnx")
    return Classifier.from_pretrained(a.model_path, device=a.device, precision=a.precision,
                                      max_length=a.max_length, batch_size=a.batch_size,
                                      trust_remote_code=a.trust_remote_code, allow_pickle=a.allow_pickle,
                                      long_text=a.long_text, stride=a.stride, backend=a.backend,
                                      threshold=getattr(a, "threshold", None))


def format_temperature(value: float) -> str:
    """4 significant digits, always with a decimal point: 1.0, 0.8303, 50.0."""
    text = f"{float(value):.4g}"
    return text if "." in text or "e" in text else text + ".0"


def write_jsonl(path: str, rows: Iterable[dict]) -> int:
    """Write rows as they come; a file appears under its name only once complete (``-`` is stdout)."""
    count = 0
    if path == "-":
        for count, row in enumerate(rows, 1):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            if count % 256 == 0:
                sys.stdout.flush()
        sys.stdout.flush()
        return count
    with atomic_open(path) as f:
        for count, row in enumerate(rows, 1):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return count


def check_writable(path: str | None) -> None:
    """Fail before any work when an output file's folder does not exist."""
    if path and path != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        from ..errors import OutputError

        raise OutputError(f"{path}: its folder does not exist; create it or choose another --output")

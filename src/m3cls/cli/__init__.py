"""The m3cls command line: the only layer that prints, reads flags or exits.

Results go to stdout; logs and progress bars to stderr. A problem the user can fix (an ``M3clsError``) ends
the command with one line on stderr and exit code 2. One module per command group:
``train`` (train, demo), ``tune``, ``cv``, ``audit``, ``predict``, ``trust`` (evaluate, calibrate, inspect),
``deploy`` (serve, export), ``select``, ``distill``, ``stress``; ``common`` holds what they share.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from typing import Callable

from .. import __version__
from ..errors import M3clsError, TrainingInterrupted

COMMANDS = {
    "train": "fine-tune a model on labelled data, or fit a probe on a frozen encoder (--method probe)",
    "cv": "cross-validate, probe or fine-tuning: mean and spread of scores, out-of-fold probabilities",
    "audit": "rank likely label errors from out-of-fold probabilities, duplicates and near-duplicates",
    "predict": "classify one text (--text) or a file (--input), printing labels and probabilities",
    "evaluate": "score a model on a labelled file: accuracy, macro-F1, per class, log-loss, ECE",
    "calibrate": "refit a model's temperature, or choose a decision threshold (--target_fpr ...), on labelled data",
    "stress": "perturb labelled texts (homoglyphs, zero-width, whitespace, typos...) and report flipped decisions",
    "inspect": "look at a data set: balance, duplicates, train/validation leakage, lengths, unknown tokens",
    "serve": "serve a model over HTTP (micro-batched /predict, /labels, /health, a web page at /)",
    "export": "export a model to a standalone ONNX folder, optionally int8-quantized",
    "select": "choose which unlabelled texts to label next: uncertain and diverse first (active learning)",
    "distill": "train a small, fast student model to reproduce a teacher model's probabilities",
    "tune": "search learning rate, epochs, batch size and warmup with Optuna; the best trial is the model",
    "demo": "fine-tune the bundled MiniLM on BBC News (in the messages format), then predict a sample",
}
#: the module of each command; imported only when its command runs, so --help and inspect stay light
_MODULES = {"train": "train", "demo": "train", "tune": "tune", "cv": "cv", "audit": "audit", "predict": "predict",
            "evaluate": "trust", "calibrate": "trust", "inspect": "trust", "serve": "deploy", "export": "deploy",
            "select": "select", "distill": "distill", "stress": "stress"}


#: the cyclic garbage collector's first threshold while a command runs (Python's default is 700)
GC_THRESHOLD = 10_000


def run() -> None:
    """The ``m3cls`` console script and ``python -m m3cls``: :func:`main` in a process of its own.

    Importing torch and transformers creates a few million long-lived objects, and the cyclic garbage collector
    scans them again and again as they arrive, and once more when the interpreter exits. On a 2-core EPYC
    (``python benchmarks/startup.py``), importing what ``m3cls train`` imports took 4.8 s and exiting 1.3 s; with
    a higher first threshold (the scans are rarer; cycles are still collected) and what exists frozen at exit
    (the final scan skips it), 4.0 s and 0.2 s. The price: objects still caught in reference cycles at exit are not finalized
    (their ``__del__`` does not run). m3cls writes every file in a ``with`` block and renames it into place, so
    none of its output depends on that. :func:`main` alone leaves the collector as it is, for callers whose
    process goes on afterwards (tests, notebooks).
    """
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """The command line, for ``argv`` (the process's arguments when None); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _print_overview()
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"m3cls {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in _MODULES:
        from .helpfmt import suggest

        hint = suggest(command, COMMANDS, prefix="") or f"; commands: {', '.join(COMMANDS)}"
        print(f"m3cls: error: unknown command {command!r}{hint}", file=sys.stderr)
        return 2
    _setup_logging()
    try:
        return handler(command)(rest)
    except TrainingInterrupted as e:
        print(f"m3cls {command}: {e}", file=sys.stderr)
        return 130
    except M3clsError as e:
        print(f"m3cls {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"m3cls {command}: interrupted", file=sys.stderr)
        return 130


def handler(command: str) -> Callable[[list[str]], int]:
    """The ``cmd_<command>`` function of a command's module."""
    module = importlib.import_module(f".{_MODULES[command]}", __name__)
    return getattr(module, f"cmd_{command}")


def parser(command: str):
    """The ``argparse`` parser of a command, as its ``--help`` shows it (the docs' reference is built from it)."""
    module = importlib.import_module(f".{_MODULES[command]}", __name__)
    return getattr(module, f"{command}_parser")()


def _print_overview() -> None:
    print(f"m3cls {__version__}: fine-tune and use transformer text classifiers\n\nusage: m3cls COMMAND [flags]"
          f"\n\ncommands:")
    for name, text in COMMANDS.items():
        print(f"  {name:<10} {text}")
    print("\n'm3cls COMMAND --help' lists a command's flags.")


def _setup_logging() -> None:
    level = os.environ.get("M3CLS_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    os.environ.setdefault("DATASETS_VERBOSITY", "error")  # not "using the latest cached version" at every load
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not sys.stderr.isatty():  # progress bars only on a terminal; plain log lines otherwise
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        hf_logging.disable_progress_bar()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # TOKENIZERS_PARALLELISM stays unset: the Rust tokenizer then uses every core (1.7x "false"'s speed on 2
    # cores, benchmarks/startup.py), and switches itself off, with one warning, in a process forked after using it

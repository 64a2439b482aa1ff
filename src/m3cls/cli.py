"""The m3cls command line: the only module that prints, reads flags or exits.

Results go to stdout; logs and progress bars to stderr. A problem the user can fix (an ``M3clsError``) ends
the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable

from . import __version__, distributed
from .data import FORMATS, ReadOptions, iter_items
from .errors import ConfigError, M3clsError, OutputError, TrainingInterrupted

logger = logging.getLogger("m3cls")

COMMANDS = {
    "train": "fine-tune a model on labelled data (all transformers TrainingArguments flags work too)",
    "predict": "classify one text (--text) or a file (--input), printing labels and probabilities",
    "evaluate": "score a model on a labelled file: accuracy, macro-F1, per class, log-loss, ECE",
    "calibrate": "refit a model's temperature on a labelled file and save it",
    "inspect": "look at a data set: balance, duplicates, train/validation leakage, lengths, unknown tokens",
    "serve": "serve a model over HTTP (micro-batched /predict, /labels, /health, a web page at /)",
    "export": "export a model to a standalone ONNX folder, optionally int8-quantized",
    "demo": "fine-tune the bundled MiniLM on BBC News (in the messages format), then predict a sample",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``m3cls`` console script and ``python -m m3cls``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _print_overview()
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"m3cls {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    handler = _HANDLERS.get(command)
    if handler is None:
        print(f"m3cls: error: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    _setup_logging()
    try:
        return handler(rest)
    except TrainingInterrupted as e:
        print(f"m3cls {command}: {e}", file=sys.stderr)
        return 130
    except M3clsError as e:
        print(f"m3cls {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"m3cls {command}: interrupted", file=sys.stderr)
        return 130


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
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not sys.stderr.isatty():  # progress bars only on a terminal; plain log lines otherwise
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        hf_logging.disable_progress_bar()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# -- train -------------------------------------------------------------------------------------------------
def _train_parser():
    from transformers import HfArgumentParser, TrainingArguments

    from .training import TrainConfig

    parser = HfArgumentParser((TrainConfig, TrainingArguments), prog="m3cls train",
                              description="Fine-tune a sequence classifier. m3cls flags first, then every "
                                          "transformers TrainingArguments flag.")
    from .trainer_setup import cpu_defaults

    parser.set_defaults(**cpu_defaults())
    parser.set_defaults(train_sampling_strategy="group_by_length", per_device_train_batch_size=16,
                        per_device_eval_batch_size=32, logging_steps=25, save_total_limit=2, report_to="none",
                        warmup_steps=0.1, num_train_epochs=3.0,
                        # True makes the Trainer scale each rank's loss by the number of processes, and log it
                        # so scaled; with one item per text and equal per-rank batches, False gives the same
                        # gradients and a logged loss that matches a single process
                        average_tokens_across_devices=False)
    return parser


def cmd_train(argv: list[str]) -> int:
    from .training import train

    explicit = frozenset(a[2:].split("=")[0] for a in argv if a.startswith("--"))
    try:
        config, args = _train_parser().parse_args_into_dataclasses(args=argv)
    except ValueError as e:  # TrainingArguments' own checks
        raise ConfigError(" ".join(str(e).split())) from None
    if not args.output_dir or "output_dir" not in explicit:
        raise ConfigError("--output_dir is required: the folder for the trained model")
    result = train(config, args, explicit)
    distributed.finish()
    print(json.dumps({"output_dir": result.output_dir, "accuracy": round(result.metrics["accuracy"], 4),
                      "macro_f1": round(result.metrics["macro_f1"], 4)}))
    return 0


# -- predict -----------------------------------------------------------------------------------------------
def _predict_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls predict", description="Classify texts with a fine-tuned model.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one text to classify")
    src.add_argument("--input", help="file of texts (any m3cls format, or .txt one per line); - for stdin")
    p.add_argument("--output", default="-", help="JSONL output for --input; - for stdout (default)")
    p.add_argument("--temperature", default="auto",
                   help="softmax temperature above 0, or 'auto' for the one saved with the model (default)")
    p.add_argument("--json", action="store_true", help="with --text: print one JSON object")
    add_model_flags(p)
    _add_read_flags(p)
    return p


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The flags that load a Classifier, shared by predict, evaluate and calibrate."""
    p.add_argument("--model_path", required=True, help="model folder from 'm3cls train' or a checkpoint folder")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_length", type=int, default=None, help="default: the value saved at training")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="onnx: run a folder written by 'm3cls export' with onnxruntime")
    p.add_argument("--long_text", default="truncate", choices=("truncate", "chunks"),
                   help="chunks: classify overlapping max_length windows of a long text and average their logits")
    p.add_argument("--stride", type=int, default=0, help="tokens shared by neighbouring windows (chunks)")
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--allow_pickle", action="store_true")


def _add_read_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data_format", default="auto", choices=FORMATS)
    p.add_argument("--text_column", default="text")
    p.add_argument("--label_column", default="label")
    p.add_argument("--text_message_index", type=int, default=1)
    p.add_argument("--label_message_index", type=int, default=-1)


def _read_options(a: argparse.Namespace) -> ReadOptions:
    return ReadOptions(a.data_format, a.text_column, a.label_column, a.text_message_index, a.label_message_index)


def _parse_temperature(value: str) -> float | None:
    from .inference import check_temperature

    if value == "auto":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"--temperature {value!r} must be a number above 0 or 'auto'") from None
    return check_temperature(number)


def _check_model_folder(path: str) -> None:
    if not os.path.isdir(path):
        raise ConfigError(f"--model_path {path}: no such folder; give the --output_dir of 'm3cls train' or one "
                          f"of its checkpoint-N folders")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(f"--model_path {path}: not a model folder (no config.json); give the --output_dir of "
                          f"'m3cls train' or one of its checkpoint-N folders")


def _load_classifier(a: argparse.Namespace):
    from .inference import Classifier

    _check_model_folder(a.model_path)
    backend = a.backend
    names = os.listdir(a.model_path)
    if backend == "torch" and "model.onnx" in names and not any(n.endswith(".safetensors") for n in names):
        raise ConfigError(f"--model_path {a.model_path} is an ONNX export; add --backend onnx")
    return Classifier.from_pretrained(a.model_path, device=a.device, precision=a.precision,
                                      max_length=a.max_length, batch_size=a.batch_size,
                                      trust_remote_code=a.trust_remote_code, allow_pickle=a.allow_pickle,
                                      long_text=a.long_text, stride=a.stride,
                                      backend=backend)


def cmd_predict(argv: list[str]) -> int:
    a = _predict_parser().parse_args(argv)
    temperature = _parse_temperature(a.temperature)
    if a.text is not None and not a.text.strip():
        raise ConfigError("--text is empty; give the text to classify")
    if a.input and a.input != "-" and not os.path.exists(a.input):
        raise ConfigError(f"--input {a.input}: file not found")
    clf = _load_classifier(a)
    if a.text is not None:
        prediction = clf.predict([a.text], temperature)[0]
        t = clf.temperature if temperature is None else temperature
        print(json.dumps(prediction.to_dict(0), ensure_ascii=False) if a.json
              else _format_prediction(a.text, t, prediction))
        return 0
    texts = (item.text for item in iter_items(a.input, _read_options(a)))
    rank, size = distributed.world()
    if size > 1:
        return _predict_distributed(a, clf, texts, temperature, rank, size)
    count = _write_jsonl(a.output, (p.to_dict(i) for i, p in enumerate(clf.predict_stream(texts, temperature))))
    logger.info("wrote %d predictions to %s", count, "stdout" if a.output == "-" else a.output)
    return 0


def _predict_distributed(a, clf, texts, temperature, rank: int, size: int) -> int:
    """Under torchrun: this rank predicts every size-th text; rank 0 merges all ranks into --output."""
    if a.output == "-" or a.input == "-":
        raise ConfigError("with torchrun, --input and --output must be files (not -)")
    distributed.init_process_group()
    mine = distributed.shard(texts, rank, size)
    count = _write_jsonl(distributed.part_path(a.output, rank),
                         (p.to_dict() for p in clf.predict_stream(mine, temperature)))
    logger.info("rank %d/%d predicted %d texts", rank, size, count)
    distributed.barrier()
    if rank == 0:
        total = distributed.interleave(a.output, size)
        logger.info("wrote %d predictions from %d processes to %s", total, size, a.output)
    distributed.finish()
    return 0


def _format_prediction(text: str, temperature: float, prediction) -> str:
    width = max(len(name) for name in prediction.probabilities)
    lines = [f"Text: {text}", f"Temperature: {format_temperature(temperature)}",
             f"Predicted label: {prediction.label} (id {prediction.label_id})", "Probabilities:"]
    lines += [f"  {name:<{width}}  {p:.4f}" for name, p in prediction.probabilities.items()]
    return "\n".join(lines)


def format_temperature(value: float) -> str:
    """4 significant digits, always with a decimal point: 1.0, 0.8303, 50.0."""
    text = f"{float(value):.4g}"
    return text if "." in text or "e" in text else text + ".0"


def _write_jsonl(path: str, rows) -> int:
    """Write rows as they come; a file appears under its name only once complete."""
    if path == "-":
        count = 0
        for count, row in enumerate(rows, 1):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            if count % 256 == 0:
                sys.stdout.flush()
        sys.stdout.flush()
        return count
    partial = path + ".partial"
    try:
        with open(partial, "w", encoding="utf-8") as f:
            count = 0
            for count, row in enumerate(rows, 1):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(partial, path)
        return count
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror}); choose another --output") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


# -- demo --------------------------------------------------------------------------------------------------
def cmd_demo(argv: list[str]) -> int:
    from .demo import SAMPLE_TEXT, write_bbc_messages

    p = argparse.ArgumentParser(prog="m3cls demo", description=COMMANDS["demo"])
    p.add_argument("--workdir", default="demo", help="folder for the data and the model (default: demo)")
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--num_train_epochs", default="2")
    a, extra = p.parse_known_args(argv)
    data_path = os.path.join(a.workdir, "bbc_messages.json")
    output_dir = os.path.join(a.workdir, "model")
    n = write_bbc_messages(data_path)
    logger.info("wrote %d BBC News articles in the reference messages format to %s", n, data_path)
    train_argv = ["--model_name_or_path", "bundled", "--data_path", data_path, "--output_dir", output_dir,
                  "--max_length", str(a.max_length), "--num_train_epochs", a.num_train_epochs,
                  "--learning_rate", "1e-4", "--per_device_train_batch_size", "16", "--overwrite_output_dir",
                  "--save_total_limit", "1", *extra]
    logger.info("running: m3cls train %s", " ".join(train_argv))
    cmd_train(train_argv)
    predict_argv = ["--model_path", output_dir, "--text", SAMPLE_TEXT]
    logger.info("running: m3cls predict --model_path %s --text %r", output_dir, SAMPLE_TEXT)
    return cmd_predict(predict_argv)


def _lazy(module: str, name: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        import importlib

        return getattr(importlib.import_module(f".{module}", __package__), f"cmd_{name}")(argv)

    return run


_HANDLERS: dict[str, Callable[[list[str]], int]] = {
    "train": cmd_train, "predict": cmd_predict, "demo": cmd_demo,
    **{name: _lazy("cli_trust", name) for name in ("evaluate", "calibrate", "inspect")},
    **{name: _lazy("cli_deploy", name) for name in ("serve", "export")},
}

"""``m3cls train`` and ``m3cls demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..errors import ConfigError

logger = logging.getLogger("m3cls")


def train_parser():
    """m3cls' flags (TrainConfig) and every transformers TrainingArguments flag, with m3cls' defaults."""
    from transformers import HfArgumentParser, TrainingArguments

    from ..training import TrainConfig
    from ..training.args import TRAIN_DEFAULTS, cpu_defaults

    parser = HfArgumentParser((TrainConfig, TrainingArguments), prog="m3cls train",
                              description="Fine-tune a sequence classifier. m3cls flags first, then every "
                                          "transformers TrainingArguments flag.")
    parser.set_defaults(**cpu_defaults(), **TRAIN_DEFAULTS)
    parser.add_argument("--config", help="a YAML or JSON file of train flags (flags typed here override it), "
                                         "e.g. a model folder's train_config.yaml")
    return parser


def parse_train_args(argv: list[str]):
    """(TrainConfig, TrainingArguments values, the flags typed or in --config): the arguments are built later,
    once. A ``--config`` file's flags go before the typed ones, so typed flags win."""
    from dataclasses import fields

    from transformers import TrainingArguments

    from ..training import TrainConfig

    parser = train_parser()
    argv, direct = config_file_argv(argv, parser)
    explicit = frozenset(a[2:].split("=")[0] for a in argv if a.startswith("--")) | set(direct)
    parser.set_defaults(**direct)
    namespace = vars(parser.parse_args(argv))
    config = TrainConfig(**{f.name: namespace[f.name] for f in fields(TrainConfig)})
    values = {f.name: namespace[f.name] for f in fields(TrainingArguments) if f.init and f.name in namespace}
    if not values.get("output_dir") or "output_dir" not in explicit:
        raise ConfigError("--output_dir is required: the folder for the trained model")
    return config, values, explicit


def config_file_argv(argv: list[str], parser) -> tuple[list[str], dict]:
    """``argv`` with a ``--config`` file's flags put first, and the values no token can carry (lists)."""
    from ..runconfig import check_keys, load_config_file, to_argv

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
    parser.error = _config_value_error(known.config, set(values), rest)
    return tokens + rest, direct


def _config_value_error(path: str, keys: set[str], typed: list[str]):
    """argparse's error for a bad value, as one line naming the config file when the value came from it."""
    import re

    typed_flags = {a[2:].split("=")[0].replace("-", "_") for a in typed if a.startswith("--")}

    def error(message: str):
        found = re.match(r"argument --(\w+)", message)
        name = found.group(1) if found else None
        if name in keys and name not in typed_flags:
            raise ConfigError(f"{path}: {name}: {message.split(': ', 1)[-1]}")
        raise ConfigError(f"{message} (with --config {path})")

    return error


def cmd_train(argv: list[str]) -> int:
    from .. import distributed
    from ..training import train

    config, values, explicit = parse_train_args(argv)
    result = train(config, values, explicit)
    distributed.finish()
    print(json.dumps({"output_dir": result.output_dir, "accuracy": round(result.metrics["accuracy"], 4),
                      "macro_f1": round(result.metrics["macro_f1"], 4)}))
    return 0


def cmd_demo(argv: list[str]) -> int:
    from ..demo import SAMPLE_TEXT, write_bbc_messages
    from .predict import cmd_predict

    p = argparse.ArgumentParser(prog="m3cls demo", description="fine-tune the bundled MiniLM on BBC News, "
                                                               "then predict a sample")
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

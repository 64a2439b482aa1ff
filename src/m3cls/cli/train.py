"""``m3cls train`` and ``m3cls demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os

from .common import bar_safe_logging, parse_train_args, train_parser  # noqa: F401 (m3cls.cli.parser)
from .helpfmt import finish

logger = logging.getLogger("m3cls")


def cmd_train(argv: list[str]) -> int:
    from ..inference import distributed
    from ..training import train

    request, _ = parse_train_args(argv)
    with bar_safe_logging():
        result = train(request)
    distributed.finish()
    report = os.path.join(result.output_dir, "report", "index.html")
    logger.info("done: the model is in %s%s", result.output_dir,
                f"; the report is {report}" if os.path.isfile(report) else "")
    from ..training.tasks import task_summary

    print(json.dumps({"output_dir": result.output_dir, **task_summary(result.contract.task, result.metrics)}))
    return 0


def demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="m3cls demo", description="Fine-tune the bundled MiniLM on BBC News, then "
                                                               "predict a sample. Other 'm3cls train' flags pass "
                                                               "through to training.")
    p.add_argument("--workdir", default="demo", help="folder for the data and the model (default: demo)")
    p.add_argument("--max_length", type=int, default=None, help="tokens per article (default: per CPU kind, 128)")
    p.add_argument("--num_train_epochs", default=None,
                   help="passes over the training articles (default: 2 on a GPU or a CPU with fast bf16, AMX or "
                        "AVX512-BF16; 1 on other CPUs, so the demo takes about 5 minutes on 2 cores)")
    return finish(p, "demo")


def cmd_demo(argv: list[str]) -> int:
    from ..data.demo import SAMPLE_TEXT, write_bbc_messages
    from .predict import cmd_predict

    a, extra = demo_parser().parse_known_args(argv)
    _demo_defaults(a)
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


def _demo_defaults(a: argparse.Namespace) -> None:
    """Fill the demo's length and epochs for this machine's kind, and say what was chosen and why."""
    import torch

    from ..cpukinds import describe, kind_paths

    paths = kind_paths("amx" if torch.cuda.is_available() else None)  # a GPU trains as fast as the best CPU
    where = "a GPU" if torch.cuda.is_available() else f"CPU kind {describe()}"
    chosen = []
    if a.num_train_epochs is None:
        a.num_train_epochs = paths.demo_epochs
        chosen.append(f"--num_train_epochs {a.num_train_epochs}")
    if a.max_length is None:
        a.max_length = paths.demo_max_length
        chosen.append(f"--max_length {a.max_length}")
    if chosen:
        logger.info("demo settings for %s: %s, precision %s (%s)", where, " ".join(chosen), paths.precision,
                    paths.source)

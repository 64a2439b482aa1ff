"""``m3cls tune``: a hyperparameter search around a training run described by a config file."""

from __future__ import annotations

import argparse
import json
import logging

from .helpfmt import finish

logger = logging.getLogger("m3cls")


def tune_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="m3cls tune", description="Search learning rate, epochs, batch size and warmup (or the config file's "
        "search_space) with Optuna's TPE sampler and median pruning on validation macro-F1; the best trial "
        "becomes the model in --output_dir. Every 'm3cls train' flag works too, and overrides --config.",
        allow_abbrev=False)
    p.add_argument("--config", help="YAML or JSON file of train flags, with an optional search_space mapping")
    p.add_argument("--n_trials", type=int, default=20, help="number of trials (default 20)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop starting trials after this many seconds (a running trial finishes)")
    p.add_argument("--pruner_startup_trials", type=int, default=3,
                   help="trials that run to the end before any is pruned (default 3)")
    p.add_argument("--pruner_warmup_steps", type=int, default=0,
                   help="training steps in each trial before it can be pruned (default 0)")
    return finish(p, "tune")


def cmd_tune(argv: list[str]) -> int:
    from ..errors import ConfigError
    from ..inference import distributed
    from ..training.runconfig import load_config_file
    from ..training.tuning import parse_space, tune
    from .common import parse_train_args, train_parser

    a, rest = tune_parser().parse_known_args(argv)
    if distributed.world()[1] > 1:
        raise ConfigError("m3cls tune runs its trials one after another in one process; start it without torchrun")
    train_argv = (["--config", a.config] if a.config else []) + rest
    request, _ = parse_train_args(train_argv)
    spec = load_config_file(a.config).get("search_space") if a.config else None
    flags = {action.dest for action in train_parser()._actions} - {"help", "config", "output_dir"}
    space = parse_space(spec, flags, a.config or "the default search space")
    result = tune(request, space, a.n_trials, a.timeout, a.pruner_startup_trials, a.pruner_warmup_steps)
    counts = {s: sum(r["state"] == s for r in result.trials) for s in ("complete", "pruned", "failed")}
    print(json.dumps({"output_dir": result.output_dir, "best_trial": result.best_trial,
                      "macro_f1": round(result.best_score, 4), "trials": len(result.trials), **counts}))
    return 0

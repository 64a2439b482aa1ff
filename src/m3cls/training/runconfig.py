"""Runs described in a file: ``m3cls train --config run.yaml`` (YAML or JSON), and the settings file saved back.

A config file is a flat mapping of train flags to values, spelled as on the command line without the dashes
(``learning_rate: 2.0e-5``). Its values become command-line tokens placed *before* the ones typed, so typed
flags override the file and every value is converted and checked by the same parser. An unknown key is
refused with the nearest valid flag. ``search_space`` (read by ``m3cls tune``) is allowed and ignored by train.

Every saved model folder gets ``train_config.yaml``: m3cls' own settings and the TrainingArguments that differ
from transformers' defaults, as resolved for that run; ``m3cls train --config model/train_config.yaml`` reruns it.

Example::

    >>> to_argv({"learning_rate": "2e-5", "fp16": True, "labels": None}, {})
    (['--learning_rate', '2e-5', '--fp16', 'true'], {})
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from typing import Any, Iterable

from ..errors import ConfigError
from ..files import atomic_open

logger = logging.getLogger(__name__)

TRAIN_CONFIG_FILE = "train_config.yaml"
#: keys a config file may hold beside the train flags (the search space of ``m3cls tune``)
TUNE_KEYS = ("search_space",)



def load_config_file(path: str) -> dict[str, Any]:
    """The mapping in a YAML or JSON file; a syntax error names the file, line and column."""
    if not os.path.isfile(path):
        raise ConfigError(f"--config {path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: cannot read ({e})") from None
    data = _parse_json(path, text) if path.lower().endswith(".json") else _parse_yaml(path, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level is a {type(data).__name__}, expected a mapping of flags to "
                          f"values such as 'learning_rate: 2.0e-5'")
    return {str(k): v for k, v in data.items()}


def _parse_json(path: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}, column {e.colno}: {e.msg}; fix the JSON") from None


def _parse_yaml(path: str, text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(str(e.problem or e.context or "invalid YAML").split())
        raise ConfigError(f"{path}: {where}{what}; fix the YAML") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({' '.join(str(e).split())})") from None


def check_keys(values: dict, valid: Iterable[str], path: str, extra: Iterable[str] = TUNE_KEYS) -> None:
    """Refuse a key that is not a flag, naming the nearest valid one."""
    names = sorted(set(valid))
    allowed = set(names) | set(extra)
    for key in values:
        if key not in allowed:
            near = difflib.get_close_matches(key.lstrip("-").replace("-", "_"), names, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else "; 'm3cls train --help' lists the flags"
            raise ConfigError(f"{path}: unknown key {key!r}{hint}")


def to_argv(values: dict, actions: dict) -> tuple[list[str], dict]:
    """Command-line tokens for a config mapping, and the values no token can carry (a list for a one-value flag).

    ``actions`` maps a flag to its argparse action (for its ``nargs``); None values are left out.
    """
    tokens: list[str] = []
    direct: dict = {}
    for key, value in values.items():
        if value is None or key in TUNE_KEYS:
            continue
        nargs = getattr(actions.get(key), "nargs", None)
        if isinstance(value, (list, tuple)):
            if nargs in ("+", "*") and value:
                tokens += [f"--{key}", *(_token(v) for v in value)]
            else:
                direct[key] = list(value)
            continue
        tokens += [f"--{key}", _token(value)]
    return tokens, direct


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def write_train_config(folder: str, settings: dict | None) -> str | None:
    """Write ``train_config.yaml`` (atomically) so ``m3cls train --config`` can rerun the training."""
    import yaml

    if not settings:
        return None
    from .. import __version__

    path = os.path.join(folder, TRAIN_CONFIG_FILE)
    with atomic_open(path, "model folder") as f:
        f.write(f"# Settings of this training, resolved by m3cls {__version__}. Rerun it with\n"
                f"#   m3cls train --config {TRAIN_CONFIG_FILE} --output_dir NEW_FOLDER\n"
                f"# (flags typed on the command line override this file; paths are relative to where you run).\n")
        yaml.safe_dump(settings, f, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return path

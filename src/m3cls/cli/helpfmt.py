"""How every command's ``--help`` reads, and what an unknown flag gets: one place for all parsers.

- Flags stand in argument groups (``GROUPS``: data, model, task, training, decisions, output), m3cls' own
  first; train, cv and audit end with one group holding every other Hugging Face ``TrainingArguments`` flag.
- A default is shown unless it is None/False or the help already says it; flags with a fixed set of values show
  the set; the usage line names only the required flags (the full list is below it).
- Each command's help ends with two or three examples (``EXAMPLES``).
- Every flag also answers to its kebab-case spelling (``--model-path``); the help lists the underscore one.
- A mistyped flag or value is one line with "did you mean", including the names of transformers'
  ``run_classification.py`` and AutoTrain (``ALIASES``), raised as ``ConfigError`` (exit 2).
"""

from __future__ import annotations

import argparse
import difflib
import re
import textwrap
from typing import Iterable

from ..errors import ConfigError

#: the argument groups of every command, in this order
GROUPS = ("data", "model", "task", "training", "decisions", "output")
HF_GROUP = "all Hugging Face TrainingArguments"
#: where m3cls' own flags stand, the ones that matter most first within each group
LAYOUT = {
    "data": ("data_path", "text", "input", "validation_path", "validation_split", "data_format", "text_column",
             "label_column", "group_column", "label_separator", "text_message_index", "label_message_index",
             "dataset_name", "dataset_config", "train_split", "validation_split_name", "language",
             "calibration_data", "calibration_size", "encoding", "pool", "labelled", "exclude", "annotator_column",
             "by", "holdout_group", "background_groups", "perturbations", "from_cv"),
    "model": ("model_name_or_path", "model_path", "max_length", "precision", "device", "backend", "batch_size",
              "truncation", "long_text", "stride", "attention_dropout", "trust_remote_code", "allow_pickle",
              "opset", "quantize", "no_optimize"),
    "task": ("task", "labels", "class_weights"),
    "training": ("method", "num_train_epochs", "learning_rate", "per_device_train_batch_size", "seed",
                 "early_stopping_patience", "config", "probe_head", "probe_c", "probe_hidden", "pooling",
                 "embed_backend", "cache_dir", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                 "merge_lora", "folds", "n_trials", "timeout", "pruner_startup_trials", "pruner_warmup_steps",
                 "near_duplicate_cosine", "workdir", "memory_plan", "augment", "augment_prob", "teacher", "student",
                 "student_layers", "distill_temperature", "label_weight", "budget", "strategy"),
    "decisions": ("temperature", "calibrate_on", "calibrate_folds", "threshold", "positive_label", "target_fpr", "target_precision", "target_recall",
                  "abstain_below", "aggregate", "on_error", "max_errors"),
    "output": ("output_dir", "output", "overwrite_output_dir", "overwrite", "json", "include_text", "report",
               "predictions", "baseline", "ladder", "segments", "explain", "explain_html"),
}
#: the values of m3cls' free-text flags with a fixed set (argparse ``choices`` are shown as they are)
CHOICES = {
    "task": ("auto", "single_label", "multi_label", "regression"),
    "method": ("finetune", "probe"),
    "calibrate_on": ("validation", "oof"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "truncation": ("head", "tail", "head_tail"),
    "long_text": ("truncate", "chunks"),
    "pooling": ("auto", "cls", "mean", "max"),
    "probe_head": ("logreg", "mlp"),
    "class_weights": ("none", "balanced"),
    "embed_backend": ("torch", "onnx"),
}
#: choice sets longer than this show as {first,second,...} in the usage line
USAGE_CHOICES = 4
#: ... and in the help, which then lists them in the flag's text
LONG_CHOICES = 10
#: the flags the usage line names besides the required ones, per command family
KEY_FLAGS = {
    "train": ("data_path", "output_dir", "model_name_or_path", "method", "task", "num_train_epochs"),
    "cv": ("data_path", "output_dir", "model_name_or_path", "method", "folds"),
    "audit": ("data_path", "output_dir", "model_name_or_path", "method"),
}
#: other tools' flag names -> m3cls' (transformers' run_classification.py, AutoTrain, sentence-transformers)
ALIASES = {
    "train_file": "data_path", "validation_file": "validation_path", "test_file": "data_path",
    "max_seq_length": "max_length", "max_seq_len": "max_length", "text_column_name": "text_column",
    "label_column_name": "label_column", "model_name": "model_name_or_path", "model": "model_name_or_path",
    "epochs": "num_train_epochs", "lr": "learning_rate", "batch_size": "per_device_train_batch_size",
    "project_name": "output_dir", "valid_split": "validation_split_name", "data": "data_path",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Underscore flag names only, ``(default: X)`` where it tells something, examples kept as written."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=34, width=110)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS, "") or action.required or "default" in text.lower() \
                or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        return f"{text} (default: %(default)s)".lstrip()

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.dest == "help":
            return super()._format_action_invocation(action)
        name = next((s for s in action.option_strings if s.startswith("--") and "-" not in s[2:]),
                    action.option_strings[0])
        if action.nargs == 0:
            return name
        return f"{name} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


def finish(parser: argparse.ArgumentParser, command: str, rest_title: str | None = None) -> argparse.ArgumentParser:
    """Group, annotate and exemplify ``parser`` for ``m3cls COMMAND --help``; unknown flags get suggestions.

    Flags not in ``LAYOUT`` go to a last group, ``rest_title`` (train's TrainingArguments), else "other".
    """
    parser.formatter_class = HelpFormatter
    parser.description = textwrap.fill(parser.description or "", 110)
    parser.epilog = examples_text(command)
    _annotate(parser)
    _regroup(parser, rest_title or "other")
    add_kebab_aliases(parser)
    parser.usage = short_usage(parser, KEY_FLAGS.get(command, ()))
    parser.error = lambda message: _raise(parser, message)
    return parser


def examples_text(command: str) -> str:
    from .examples import EXAMPLES

    lines = ["examples:"] + [f"  {line}" if line else "" for example in EXAMPLES.get(command, ())
                             for line in (*example, "")]
    return "\n".join(lines).rstrip() + "\n\nevery flag also works with dashes (--model-path); the docs' reference " \
                                       "page lists every flag: docs/reference/cli.md"


def _annotate(parser: argparse.ArgumentParser) -> None:
    """Choices as metavars; ``--no_X`` says what it turns off instead of repeating ``--X``'s help."""
    for action in parser._actions:
        values = action.choices or CHOICES.get(action.dest)
        if values and action.nargs != 0 and isinstance(values, (tuple, list)):
            values = [str(v) for v in values]
            action.metavar = "{" + ",".join(values) + "}"
            if len(values) > LONG_CHOICES:
                action.metavar = "{" + ",".join(values[:2]) + ",...}"
                action.help = f"{action.help or ''} One of: {', '.join(values)}.".lstrip()
        negative = next((s for s in action.option_strings if s.startswith("--no_")), None)
        if negative and isinstance(action, argparse._StoreFalseAction):
            action.help = f"turn off --{negative[5:]}"


def _regroup(parser: argparse.ArgumentParser, rest_title: str) -> None:
    """Put every optional flag in its ``LAYOUT`` group, in ``LAYOUT``'s order; the rest in ``rest_title``."""
    actions = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    for group in parser._action_groups:
        group._group_actions[:] = [a for a in group._group_actions if not a.option_strings or a.dest == "help"]
    parser._action_groups[:] = [g for g in parser._action_groups if g._group_actions]
    placed: set[int] = set()
    for title in GROUPS:
        chosen = [a for dest in LAYOUT[title] for a in actions if a.dest == dest and id(a) not in placed]
        if chosen:
            parser.add_argument_group(title)._group_actions.extend(chosen)
            placed.update(id(a) for a in chosen)
    rest = [a for a in actions if id(a) not in placed]
    if rest:
        parser.add_argument_group(rest_title)._group_actions.extend(rest)


def add_kebab_aliases(parser: argparse.ArgumentParser) -> None:
    """``--model-path`` for ``--model_path`` on every flag (the help lists the underscore spelling only)."""
    for action in parser._actions:
        for option in list(action.option_strings):
            dashed = "--" + option[2:].replace("_", "-")
            if option.startswith("--") and dashed not in parser._option_string_actions:
                parser._option_string_actions[dashed] = action


def short_usage(parser: argparse.ArgumentParser, key: tuple[str, ...] = ()) -> str:
    """``prog`` with the required flags (a required one-of group as ``(--a X | --b Y)``), the ``key`` flags, and
    ``[flags]``: a usage line that fits on a screen, whatever the number of flags."""
    parts = [parser.prog]
    grouped = set()
    for group in parser._mutually_exclusive_groups:
        if group.required:
            parts.append("(" + " | ".join(_shown(a) for a in group._group_actions) + ")")
            grouped.update(id(a) for a in group._group_actions)
    parts += [_shown(a) for a in parser._actions if a.required and id(a) not in grouped]
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    parts += [_shown(by_dest[d]) if d in ("data_path", "output_dir") else f"[{_shown(by_dest[d])}]"
              for d in key if d in by_dest and not by_dest[d].required]
    indent = " " * (len("usage: ") + len(parser.prog) + 1)
    return _wrap(parts + ["[flags]"], indent)


def _wrap(parts: list[str], indent: str, width: int = 108) -> str:
    """Usage parts on lines of at most ``width`` characters (with argparse's ``usage: ``), never split inside one."""
    lines, line = [], parts[0]
    for part in parts[1:]:
        if len("usage: ") + len(line) + 1 + len(part) > width:
            lines.append(line)
            line = indent + part
        else:
            line += " " + part
    return "\n".join(lines + [line])


def _shown(action: argparse.Action) -> str:
    metavar = action.metavar or action.dest.upper()
    if metavar.startswith("{") and metavar.count(",") >= USAGE_CHOICES:
        values = metavar[1:-1].split(",")
        metavar = "{" + ",".join(values[:2]) + ",...}"
    name = next((s for s in action.option_strings if "-" not in s[2:]), action.option_strings[0])
    return f"{name} {metavar}"


def flag_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag's underscore name, as the help lists them."""
    names = []
    for action in parser._actions:
        name = next((s for s in action.option_strings if s.startswith("--") and "-" not in s[2:]), None)
        if name and name not in names and action.dest != "help":
            names.append(name)
    return names


def _raise(parser: argparse.ArgumentParser, message: str):
    raise ConfigError(friendly(parser, message))


def friendly(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's error message, with "did you mean" for unknown flags and invalid choices."""
    unknown = re.match(r"unrecognized arguments: (.*)", message)
    if unknown:
        flags = [t.split("=")[0] for t in unknown.group(1).split() if t.startswith("-")]
        if flags:
            hint = suggest(flags[0], flag_names(parser))
            return f"unknown flag {flags[0]}{hint}; '{parser.prog} --help' lists every flag"
        return f"unexpected value(s) {unknown.group(1)}; every value follows its flag (--flag VALUE)"
    choice = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        values = [v.strip(" '") for v in choice.group(3).split(",")]
        return f"{choice.group(1)} {choice.group(2)!r} is not one of: {', '.join(values)}" \
               + suggest(choice.group(2), values, prefix="")
    return message


def suggest(word: str, known: Iterable[str], prefix: str = "--") -> str:
    """``"; did you mean --x?"`` for the closest known name (other tools' names first), else ``""``."""
    known = list(known)
    bare = word.lstrip("-").replace("-", "_")
    target = ALIASES.get(bare) if prefix else None
    if target and f"{prefix}{target}" in known:
        return f"; did you mean {prefix}{target}? (m3cls' name for {word})"
    close = difflib.get_close_matches(f"{prefix}{bare}", known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""

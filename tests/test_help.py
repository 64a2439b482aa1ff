"""``--help`` that reads well and mistakes that get "did you mean" (issue 23): groups, choices, examples, aliases."""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import fields

import pytest

from m3cls.cli import COMMANDS, main, parser
from m3cls.cli.examples import EXAMPLES
from m3cls.cli.helpfmt import CHOICES, GROUPS, HF_GROUP, flag_names


def _groups(p) -> dict[str, list[str]]:
    """Each argument group's title -> its flags' underscore names, in help order."""
    out = {}
    for group in p._action_groups:
        out[group.title] = [next((s for s in a.option_strings if "-" not in s[2:]), a.option_strings[0])
                            for a in group._group_actions if a.option_strings]
    return out


def test_train_help_puts_m3cls_flags_in_named_groups_before_every_trainingarguments_flag():
    from m3cls.training import TrainConfig

    p = parser("train")
    groups = _groups(p)
    titles = [t for t in groups if t in GROUPS or t == HF_GROUP]
    assert titles == [t for t in GROUPS if t in groups] + [HF_GROUP]   # data ... output, then the Trainer's
    named = {flag for t in GROUPS for flag in groups.get(t, [])}
    assert {f"--{f.name}" for f in fields(TrainConfig)} <= named
    assert {"--output_dir", "--num_train_epochs", "--learning_rate", "--config"} <= named
    assert groups["data"][0] == "--data_path" and groups["model"][0] == "--model_name_or_path"
    assert "--optim" in groups[HF_GROUP] and "--data_path" not in groups[HF_GROUP]
    help_text = p.format_help()
    assert help_text.index("--data_path") < help_text.index("--output_dir") < help_text.index("--optim")
    assert help_text.startswith("usage: m3cls train --data_path DATA_PATH --output_dir OUTPUT_DIR")


def test_choices_defaults_and_negative_flags_read_well():
    help_text = parser("train").format_help()
    assert "--method {finetune,probe}" in help_text and "--pooling {auto,cls,mean,max}" in help_text
    assert "(default: BAAI/bge-m3)" in help_text
    assert "(default: None)" not in help_text
    assert "--no_baseline                   turn off --baseline" in help_text
    assert "--optim {adamw_torch,adamw_torch_fused,...}" in help_text   # a long choice list, shortened


def test_choice_metavars_match_the_values_the_code_accepts():
    from m3cls.model.contract import LONG_TEXT_MODES, POOLINGS, TRUNCATION_MODES
    from m3cls.model.loading import PRECISIONS
    from m3cls.tasks.targets import TASK_CHOICES
    from m3cls.training.config import METHODS

    assert CHOICES["precision"] == PRECISIONS and CHOICES["task"] == TASK_CHOICES
    assert CHOICES["method"] == METHODS and CHOICES["truncation"] == TRUNCATION_MODES
    assert CHOICES["long_text"] == LONG_TEXT_MODES and CHOICES["pooling"] == ("auto", *POOLINGS)


def test_predict_lists_no_label_or_group_flags_and_serve_flags_have_help():
    assert not {"--label_column", "--group_column"} & set(flag_names(parser("predict")))
    serve = {a.dest: a for a in parser("serve")._actions}
    for name in ("port", "max_length", "device"):
        assert serve[name].help, name


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"] + ["demo"])
def test_every_help_ends_with_examples_that_name_real_flags(command):
    p = parser(command)
    assert "examples:" in p.format_help()
    known = set(flag_names(p))
    if command in ("tune", "demo"):   # they pass the other flags through to train
        known |= set(flag_names(parser("train")))
    assert len(EXAMPLES[command]) >= 2
    for _, line in EXAMPLES[command]:
        for token in shlex.split(line):
            if token.startswith("--"):
                assert token in known, f"{command}: example flag {token}"


@pytest.mark.parametrize("argv, expected", [
    (["train", "--train_file", "x.csv"], "unknown flag --train_file; did you mean --data_path?"),
    (["train", "--data_path", "x", "--validation_file", "v.csv"], "did you mean --validation_path?"),
    (["cv", "--max_seq_length", "128"], "did you mean --max_length?"),
    (["predict", "--model_path", "m", "--text", "t", "--text_column_name", "body"], "did you mean --text_column?"),
    (["predict", "--model_path", "m", "--text", "t", "--precison", "bf16"], "did you mean --precision?"),
    (["trian"], "unknown command 'trian'; did you mean train?"),
])
def test_unknown_flags_and_commands_get_one_line_with_a_suggestion(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["predict", "evaluate", "calibrate", "inspect", "serve", "export", "train"])
def test_kebab_case_spellings_work_on_every_command(command):
    p = parser(command)
    for name in flag_names(p):
        if "_" in name:
            assert p._option_string_actions.get(name.replace("_", "-")) is p._option_string_actions[name]
    a = parser("predict").parse_args(["--model-path", "m", "--text", "t", "--on-error", "skip"])
    assert (a.model_path, a.on_error) == ("m", "skip")


def test_predict_help_does_not_import_torch():
    code = "import sys; from m3cls.cli import parser; parser('predict').format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

"""TrainRequest: one run's settings, checked completely when built, before any data or model is read."""

import builtins

import pytest

from m3cls.cli import main
from m3cls.errors import ConfigError
from m3cls.training import TrainConfig
from m3cls.training.request import TrainRequest


@pytest.fixture()
def opened(monkeypatch):
    """Every path opened with ``open`` from here on."""
    paths, real = [], builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: paths.append(str(file)) or real(file, *a, **k))
    return paths


@pytest.mark.parametrize("command", ["train", "cv", "audit", "tune"])
@pytest.mark.parametrize("flags,message", [
    (["--task", "regression", "--long_text", "chunks", "--method", "finetune"],
     "--long_text chunks trains on windows of single-label texts; this model's task is regression"),
    (["--method", "finetune", "--logging_strategy", "steps", "--logging_steps", "0"], "logging_steps"),
])
def test_a_bad_combination_is_refused_before_the_data_is_opened(messages_file, tmp_path, capsys, opened, command,
                                                                flags, message):
    out = tmp_path / "out"
    code = main([command, "--data_path", messages_file, "--output_dir", str(out), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert messages_file not in opened and not out.exists()


def test_the_python_api_builds_and_checks_the_same_request(messages_file, opened):
    from m3cls.training import train

    config = TrainConfig(data_path=messages_file, task="multi_label", long_text="chunks")
    with pytest.raises(ConfigError, match="--long_text chunks trains on windows of single-label texts"):
        train(config, {"output_dir": "unused"})
    assert messages_file not in opened


def test_a_trial_sets_its_params_where_they_belong_and_counts_them_typed():
    request = TrainRequest.build(TrainConfig(data_path="d.json"), {"output_dir": "runs/x", "learning_rate": 1e-4},
                                 {"data_path", "output_dir"})
    trial = request.with_params({"learning_rate": 3e-4, "max_length": 64})
    assert trial.values["learning_rate"] == 3e-4 and "max_length" not in trial.values
    assert trial.config.max_length == 64 and request.config.max_length == 512
    assert trial.explicit == {"data_path", "output_dir", "learning_rate", "max_length"}
    assert request.values["learning_rate"] == 1e-4 and trial.output_dir == "runs/x"

"""m3cls tune: a short search ends with a model and a trial table; failed trials are recorded; pruning."""

import json
import os
import re

import pytest
import yaml

from m3cls.cli import main

optuna = pytest.importorskip("optuna")

SPACE = {"learning_rate": {"low": "1e-3", "high": "5e-3", "log": True},
         "per_device_train_batch_size": {"choices": [8, 16]}, "warmup_steps": {"min": 0.0, "max": 0.2}}


def _config(tmp_path, model, data, **changes):
    run = {"model_name_or_path": model, "data_path": data, "output_dir": str(tmp_path / "tuned"), "max_length": 64,
           "precision": "fp32", "max_steps": 4, "eval_steps": 2, "logging_steps": 2, "seed": 3, "baseline": False,
           "report": False, "search_space": SPACE, **changes}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return str(path), run["output_dir"]


def test_three_trial_search_ends_with_a_model_and_a_trial_table(tiny_xlmr, messages_file, tmp_path, capsys):
    config, out = _config(tmp_path, tiny_xlmr, messages_file)
    assert main(["tune", "--config", config, "--n_trials", "3", "--pruner_startup_trials", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in open(os.path.join(out, "tuning", "trials.jsonl"))]
    assert [r["trial"] for r in rows] == [0, 1, 2] and summary["trials"] == 3
    for row in rows:
        assert set(row["params"]) == set(SPACE) and row["state"] in ("complete", "pruned")
        assert 1e-3 <= row["params"]["learning_rate"] <= 5e-3 and row["params"]["per_device_train_batch_size"] in (8, 16)
        assert row["evaluations"] and row["evaluations"][0][0] == 2  # macro-F1 reported at every evaluation
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: (r["macro_f1"], -r["trial"]))
    assert summary["best_trial"] == best["trial"]

    meta = json.load(open(os.path.join(out, "m3cls.json")))
    assert meta["tuning"]["best_trial"] == best["trial"] and meta["metrics"]["macro_f1"] == best["macro_f1"]
    settings = yaml.safe_load(open(os.path.join(out, "train_config.yaml")))
    assert settings["output_dir"] == out and settings["learning_rate"] == best["params"]["learning_rate"]
    assert not os.path.exists(os.path.join(out, "trials"))  # only the best trial's folder was kept, moved in
    assert not [n for n in os.listdir(out) if n.startswith("checkpoint-")]
    page = open(os.path.join(out, "tuning", "index.html")).read()
    assert len(re.findall(r"<tr(?: class=\"best\")?><td>", page)) == 3 and page.count('class="best"') == 1

    from m3cls import Classifier

    assert Classifier.from_pretrained(out).predict(["furthermore the landscape"])[0].label in ("GPT", "Human")


def test_failed_trial_is_recorded_and_the_search_goes_on(tiny_xlmr, messages_file, tmp_path):
    from m3cls.cli.common import parse_train_args
    from m3cls.training import train
    from m3cls.training.tuning import parse_space, tune

    config_path, out = _config(tmp_path, tiny_xlmr, messages_file)
    request, _ = parse_train_args(["--config", config_path])
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        return train(*args, **kwargs)

    result = tune(request, parse_space(SPACE, ["learning_rate", "per_device_train_batch_size",
                                                                "warmup_steps"], "run.yaml"),
                  3, None, train_fn=flaky)
    rows = [json.loads(line) for line in open(os.path.join(out, "tuning", "trials.jsonl"))]
    assert [r["state"] for r in rows] == ["complete", "failed", "complete"] and len(result.trials) == 3
    assert rows[1]["error"] == "CUDA out of memory (simulated)" and result.best_trial in (0, 2)
    assert "CUDA out of memory (simulated)" in open(os.path.join(out, "tuning", "index.html")).read()


def test_pruning_callback_reports_macro_f1_and_prunes_below_the_median():
    from m3cls.training.tuning import pruning_callback

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))

    class State:
        global_step = 10

    first = study.ask()
    pruning_callback(first, optuna).on_evaluate(None, State(), None, metrics={"eval_macro_f1": 0.9})
    study.tell(first, 0.9)
    second = study.ask()
    callback = pruning_callback(second, optuna)
    callback.on_evaluate(None, State(), None, metrics={"eval_loss": 0.3})  # no macro-F1: nothing reported
    with pytest.raises(optuna.TrialPruned):
        callback.on_evaluate(None, State(), None, metrics={"eval_macro_f1": 0.4})
    assert callback.scores == [[10, 0.4]] and second.storage.get_trial(second._trial_id).intermediate_values == {10: 0.4}


@pytest.mark.parametrize("space,message", [
    ({"learning_rate": {"low": 1e-3, "high": 1e-5}}, "search_space.learning_rate: the minimum 0.001 is above the "
                                                     "maximum 1e-05; swap them"),
    ({"learning_rat": {"low": 1e-5, "high": 1e-3}}, "search_space key 'learning_rat' is not a train flag; did you "
                                                    "mean 'learning_rate'?"),
    ({"warmup_steps": {"low": 0, "high": 0.2, "log": True}}, "a log scale needs a minimum above 0"),
    ({"per_device_train_batch_size": {"choices": []}}, "'choices' must be a non-empty list"),
    ({"learning_rate": {"lo": 1e-5, "high": 1e-3}}, "unknown key 'lo'"),
])
def test_bad_search_space_is_one_line_and_writes_nothing(tmp_path, capsys, messages_file, space, message):
    config, out = _config(tmp_path, "bundled", messages_file, search_space=space)
    assert main(["tune", "--config", config, "--n_trials", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("m3cls tune: error: ") and message in err[0], err
    assert not os.path.exists(out)

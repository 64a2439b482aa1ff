"""Task types in the commands that arrived beside them: the probe, cv, audit and tune refuse multi-label and
regression data with one line and write nothing; the model card, grouped splits and Parquet output handle them."""

import json
import os

import pytest
import yaml
from conftest import write_json

from m3cls.cli import main

PROBE = ["--method", "probe", "--max_length", "32", "--precision", "fp32", "--pooling", "mean"]


def _multilabel_file(tmp_path) -> str:
    from task_data import make_label_sets

    return write_json(tmp_path / "multi.json", [{"text": t, "label": y} for t, y in make_label_sets(40, 3)])


def _one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(f in err[0] for f in fragments), err
    return err[0]


@pytest.mark.parametrize("extra", [[], ["--task", "multi_label"]])
def test_probe_refuses_multilabel_data(tiny_bert, tmp_path, capsys, extra):
    out = tmp_path / "probe"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", _multilabel_file(tmp_path),
                 "--output_dir", str(out), *PROBE, *extra]) == 2
    _one_error_line(capsys, "--method probe handles single-label data only", "multi_label",
                    "--method finetune --task multi_label")
    assert not out.exists()


def test_probe_refuses_regression(tiny_bert, tmp_path, capsys):
    from task_data import make_scores

    data = write_json(tmp_path / "scores.json", [{"text": t, "label": y} for t, y in make_scores(30, 1)])
    out = tmp_path / "probe"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *PROBE, "--task", "regression"]) == 2
    _one_error_line(capsys, "--method probe handles single-label data only", "regression")
    assert not out.exists()


@pytest.mark.parametrize("command", ["cv", "audit"])
def test_cv_and_audit_refuse_multilabel_data(tiny_bert, tmp_path, capsys, command):
    out = tmp_path / command
    assert main([command, "--model_name_or_path", tiny_bert, "--data_path", _multilabel_file(tmp_path),
                 "--output_dir", str(out), *PROBE[2:]]) == 2
    _one_error_line(capsys, f"m3cls {command} handles single-label data only", "m3cls evaluate")
    assert not out.exists()


def test_tune_refuses_multilabel_data(tmp_path, capsys):
    pytest.importorskip("optuna")
    run = {"model_name_or_path": "bundled", "data_path": _multilabel_file(tmp_path), "max_length": 32,
           "output_dir": str(tmp_path / "tuned"), "max_steps": 2, "search_space": {"learning_rate": {
               "low": 1e-5, "high": 1e-3}}}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(run))
    assert main(["tune", "--config", str(config), "--n_trials", "2"]) == 2
    _one_error_line(capsys, "m3cls tune", "single-label data only")
    assert not os.path.exists(run["output_dir"])


def test_model_card_describes_multilabel_and_regression(multilabel_run, regression_run):
    card = open(os.path.join(multilabel_run["model"], "README.md"), encoding="utf-8").read()
    meta = json.load(open(os.path.join(multilabel_run["model"], "m3cls.json")))
    assert "multi-label text classifier with 4 labels" in card and "micro_f1 **" in card
    assert "torch.sigmoid" in card and f"{meta['thresholds']['casual']:.4f}" in card and "Micro F1" in card
    card = open(os.path.join(regression_run["model"], "README.md"), encoding="utf-8").read()
    meta = json.load(open(os.path.join(regression_run["model"], "m3cls.json")))
    assert "text regression model" in card and "rmse **" in card and "## Target" in card
    assert repr(meta["target_std"]) in card and "softmax" not in card and ".value)" in card


def test_grouped_split_keeps_groups_whole_for_every_task():
    from m3cls.data.readers import TextData
    from m3cls.data.splits import split_for_task

    groups = [f"g{i // 3}" for i in range(60)]
    sets = [(("a",), ("a", "b"), ("b",))[i % 3] for i in range(60)]
    targets = [float(i) for i in range(60)]
    for task, labels in (("multi_label", sets), ("regression", targets)):
        data = TextData([f"text {i}" for i in range(60)], labels, "d.json", groups)
        train, validation = split_for_task(task, data, 0.2, seed=1)
        assert len(train) + len(validation) == 60 and 6 <= len(validation) <= 18
        assert not set(train.groups) & set(validation.groups)
        assert validation.path == "d.json (validation split by group)"
        assert split_for_task(task, data, 0.2, seed=1)[1].texts == validation.texts  # seeded


def test_grouped_split_refuses_a_label_only_in_validation_groups():
    from m3cls.data.readers import TextData
    from m3cls.data.splits import split_for_task
    from m3cls.errors import DataError

    labels = [("a",)] * 10 + [("rare",)] * 2
    data = TextData([f"t{i}" for i in range(12)], labels, "d.json", [f"g{i}" for i in range(10)] + ["r", "r"])
    with pytest.raises(DataError, match="'rare' fell in the validation groups"):
        for seed in range(50):  # some seed holds out group "r"
            split_for_task("multi_label", data, 0.2, seed)


def test_probe_head_is_single_label_only_in_the_contract():
    from m3cls.errors import ModelLoadError
    from m3cls.model.contract import ModelContract

    with pytest.raises(ModelLoadError, match="head probe with task 'multi_label'"):
        ModelContract(labels=("a", "b"), max_length=32, task="multi_label", head="probe",
                      pooling="mean").check("m3cls.json")


@pytest.mark.parametrize("run", ["multilabel_run", "regression_run"])
def test_predict_writes_parquet_for_every_task(request, run, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    info = request.getfixturevalue(run)
    out = tmp_path / "p.parquet"
    assert main(["predict", "--model_path", info["model"], "--input", info["val"], "--output", str(out),
                 "--precision", "fp32"]) == 0
    rows = pq.read_table(out).to_pylist()
    jsonl = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", info["model"], "--input", info["val"], "--output", str(jsonl),
                 "--precision", "fp32"]) == 0
    expected = [json.loads(line) for line in open(jsonl)]
    assert len(rows) == len(expected) == 40
    field = "value" if run == "regression_run" else "labels"
    assert [r[field] for r in rows] == [e[field] for e in expected]


def test_evaluate_on_error_skip_leaves_out_a_target_that_is_not_a_number(regression_run, tmp_path, capsys):
    rows = json.load(open(regression_run["val"]))
    rows[3]["label"] = "high"
    data = write_json(tmp_path / "val.json", rows)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model_path", regression_run["model"], "--data_path", data,
                 "--output", str(out)]) == 2
    _one_error_line(capsys, "record 4 has the target 'high', which is not a number", "--on_error skip")
    assert not out.exists()
    assert main(["evaluate", "--model_path", regression_run["model"], "--data_path", data, "--output", str(out),
                 "--on_error", "skip"]) == 0
    assert "read 40 records: 39 evaluated, 1 skipped" in capsys.readouterr().err
    assert json.load(open(out))["n"] == 39


@pytest.mark.parametrize("run", ["multilabel_run", "regression_run"])
def test_decision_tools_refuse_other_tasks(request, run, tmp_path, capsys):
    """Operating points, abstention, segments and explanations read one softmax over the labels: a multi-label
    or regression model gets one line each, exit 2, and nothing is written."""
    r = request.getfixturevalue(run)
    model = r["model"]
    capsys.readouterr()  # the fixture's training output
    card = open(os.path.join(model, "m3cls.json")).read()
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", model, "--text", "lol yeah dunno", "--explain"]) == 2
    _one_error_line(capsys, "--explain attributes a single-label decision",
                    "multi_label" if run == "multilabel_run" else "regression")
    assert main(["predict", "--model_path", model, "--input", r["val"], "--output", str(out), "--long_text",
                 "chunks", "--segments"]) == 2
    _one_error_line(capsys, "--segments apply to single-label models")
    assert main(["predict", "--model_path", model, "--text", "lol", "--abstain_below", "0.6"]) == 2
    _one_error_line(capsys, "--abstain_below")
    label = "casual" if run == "multilabel_run" else "value"
    assert main(["calibrate", "--model_path", model, "--data_path", r["val"], "--positive_label", label,
                 "--target_fpr", "0.05"]) == 2
    _one_error_line(capsys, "choose a decision rule for a single-label model",
                    "refits its temperature" if run == "multilabel_run" else "'m3cls evaluate' scores it")
    assert not out.exists() and open(os.path.join(model, "m3cls.json")).read() == card


def test_chunk_training_refuses_multilabel_data(tiny_bert, tmp_path, capsys):
    out = tmp_path / "chunks"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", _multilabel_file(tmp_path),
                 "--output_dir", str(out), "--max_length", "32", "--long_text", "chunks", "--stride", "8",
                 "--precision", "fp32"]) == 2
    _one_error_line(capsys, "--long_text chunks trains on windows of single-label texts", "multi_label")
    assert not out.exists() or not os.listdir(out)


def test_serve_refuses_explain_for_a_multilabel_model(multilabel_run):
    import httpx
    from test_serving import start

    with start(multilabel_run["model"]) as live:
        r = httpx.post(f"{live.url}/predict", json={"texts": ["lol yeah"], "explain": True})
        assert r.status_code == 422 and "single-label decision" in r.json()["error"]
        assert httpx.post(f"{live.url}/predict", json={"texts": ["lol yeah"]}).status_code == 200


def test_a_multilabel_temperature_changes_the_probabilities_shown_not_the_labels(multilabel_run):
    from m3cls import Classifier

    clf = Classifier.from_pretrained(multilabel_run["model"], precision="fp32")
    assert abs(clf.temperature - 1.0) > 0.05  # else the check below could not tell the two apart
    texts = multilabel_run["val_texts"]
    saved, hot = clf.predict(texts), clf.predict(texts, temperature=clf.temperature * 4)
    assert [p.labels for p in hot] == [p.labels for p in saved]
    assert any(abs(hot[i].probabilities[k] - saved[i].probabilities[k]) > 1e-3
               for i in range(len(texts)) for k in saved[i].probabilities)


def test_parquet_types_a_labels_column_whose_first_rows_are_all_empty(tmp_path):
    import pyarrow.parquet as pq

    from m3cls.data.sources import write_parquet

    rows = [{"index": i, "labels": [], "probabilities": {"a": 0.1}} for i in range(5000)]
    rows.append({"index": 5000, "labels": ["a"], "probabilities": {"a": 0.9}})
    path = str(tmp_path / "out.parquet")
    assert write_parquet(path, iter(rows)) == 5001
    table = pq.read_table(path)
    assert table.column("labels").to_pylist()[-2:] == [[], ["a"]]


def test_serve_refuses_a_temperature_for_a_regression_model(regression_run):
    import httpx
    from test_serving import start

    with start(regression_run["model"]) as live:
        r = httpx.post(f"{live.url}/predict", json={"texts": ["lol yeah"], "temperature": 2.0})
        assert r.status_code == 422 and "regression model predicts a number" in r.json()["error"]
        assert httpx.get(f"{live.url}/labels").json()["task"] == "regression"  # the page hides its temperature
        assert httpx.post(f"{live.url}/predict", json={"texts": ["lol yeah"]}).status_code == 200


def test_calibrate_refuses_a_rule_for_a_plain_multilabel_folder(multilabel_run, tmp_path, capsys):
    """Without m3cls.json the task comes from config.json's problem_type, after the model loads."""
    import shutil

    plain = str(tmp_path / "plain")
    shutil.copytree(multilabel_run["model"], plain)
    os.remove(os.path.join(plain, "m3cls.json"))
    capsys.readouterr()
    assert main(["calibrate", "--model_path", plain, "--data_path", multilabel_run["val"], "--abstain_below",
                 "0.6"]) == 2
    _one_error_line(capsys, "choose a decision rule for a single-label model", "multi_label")
    assert not os.path.exists(os.path.join(plain, "m3cls.json"))


def test_parquet_keeps_fields_that_first_appear_after_the_first_rows(tmp_path):
    import pyarrow.parquet as pq

    from m3cls.data.sources import write_parquet

    rows = [{"index": i, "error": "line 1: not JSON"} for i in range(5000)]  # --on_error skip's marked records
    rows += [{"index": 5000 + i, "label": "a", "probabilities": {"a": 0.9, "b": 0.1}} for i in range(3)]
    rows += [{"index": 9000, "error": "empty text"}] + [{"index": 9001, "label": "b", "unknown_token_share": 0.0}]
    path = str(tmp_path / "out.parquet")
    assert write_parquet(path, iter(rows)) == len(rows)
    table = pq.read_table(path)
    assert table.column_names == ["index", "error", "label", "probabilities", "unknown_token_share"]
    got = table.to_pylist()
    assert [r["index"] for r in got] == [r["index"] for r in rows]
    assert got[4999] == {"index": 4999, "error": "line 1: not JSON", "label": None, "probabilities": None,
                         "unknown_token_share": None}
    assert got[5000]["label"] == "a" and got[5000]["probabilities"] == {"a": 0.9, "b": 0.1}
    assert got[-2]["error"] == "empty text" and got[-1]["label"] == "b" and got[-1]["unknown_token_share"] == 0.0
    assert not list(tmp_path.glob("*.narrow")) and not list(tmp_path.glob("*.partial"))


def test_parquet_widens_again_for_each_batch_that_brings_a_field_and_refuses_a_type_clash(tmp_path):
    import pyarrow.parquet as pq

    from m3cls.data.sources import write_parquet
    from m3cls.errors import DataError

    size = 4096  # rows per batch
    rows = [{"i": i, "a": 1} for i in range(size)] + [{"i": size + i, "b": "x"} for i in range(size)]
    rows += [{"i": 2 * size, "c": [1.5]}]
    path = str(tmp_path / "out.parquet")
    assert write_parquet(path, iter(rows)) == len(rows)
    got = pq.read_table(path).to_pylist()
    assert [r["i"] for r in got] == list(range(len(rows)))
    assert got[0] == {"i": 0, "a": 1, "b": None, "c": None} and got[size]["b"] == "x" and got[-1]["c"] == [1.5]
    clash = [{"i": i, "a": 1} for i in range(size)] + [{"i": size, "a": "one"}]
    with pytest.raises(DataError, match=r"rows 4096 to 4096 do not fit the Parquet columns"):
        write_parquet(str(tmp_path / "clash.parquet"), iter(clash))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]

"""evaluate, calibrate, inspect and the training extras, through the CLI."""

import json
import os

from conftest import TRAIN_FLAGS, make_texts, messages_record, write_json

from m3cls.cli import main


def test_training_saves_temperature_baseline_and_report(trained_xlmr):
    meta = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    assert meta["temperature"] > 0 and {"ece_before", "ece_after"} <= set(meta["calibration"])
    assert meta["baseline"]["name"] == "tfidf_logreg" and 0 <= meta["baseline"]["macro_f1"] <= 1
    assert {"train", "validation", "overlap", "tokens"} <= set(meta["inspection"])
    assert meta["history"] and any("eval_macro_f1" in e for e in meta["history"])
    report = os.path.join(trained_xlmr, "report")
    assert {"index.html", "curves.png", "confusion.png", "reliability.png", "per_class_f1.png",
            "baseline.png"} <= set(os.listdir(report))


def _noisy_file(tmp_path, name="noisy.jsonl", n=60, seed=11):
    rows = []
    for i, (text, label) in enumerate(make_texts(n, seed=seed)):
        if i % 5 == 0:  # 20% wrong labels: the model will err, so a temperature can be fitted
            label = "GPT" if label == "Human" else "Human"
        rows.append(json.dumps({"text": text, "label": label}))
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_evaluate_prints_table_and_writes_json(trained_xlmr, tmp_path, capsys):
    data = _noisy_file(tmp_path)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data, "--output", str(out),
                 "--report", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    assert "60 labelled texts" in printed and "before" in printed and "confusion matrix" in printed
    result = json.loads(out.read_text())
    assert result["n"] == 60 and 0.6 <= result["after"]["accuracy"] <= 0.9
    assert result["after"]["confusion_matrix"] and "ece" in result["before"]
    assert os.path.isfile(tmp_path / "rep" / "index.html")


def test_calibrate_saves_a_temperature_that_predict_uses(trained_xlmr, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_xlmr, model)
    assert main(["calibrate", "--model_path", str(model), "--data_path", _noisy_file(tmp_path)]) == 0
    printed = capsys.readouterr().out
    meta = json.load(open(model / "m3cls.json"))
    assert f"temperature {meta['temperature']:.4f} fitted on 60 texts" in printed
    assert meta["calibration"]["ece_after"] <= meta["calibration"]["ece_before"] + 1e-9
    assert main(["predict", "--model_path", str(model), "--text", "delve lol"]) == 0
    from m3cls.cli.common import format_temperature

    assert f"Temperature: {format_temperature(meta['temperature'])}\n" in capsys.readouterr().out
    assert main(["predict", "--model_path", str(model), "--text", "delve lol", "--temperature", "1"]) == 0
    assert "Temperature: 1.0" in capsys.readouterr().out


def test_evaluate_rejects_labels_the_model_does_not_know(trained_xlmr, tmp_path, capsys):
    data = write_json(tmp_path / "d.json", [{"text": "a b", "label": "GPT"}, {"text": "c", "label": "Bard"}])
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data]) == 2
    assert "record 2 has label 'Bard', which never appears in the model's labels" in capsys.readouterr().err


def test_inspect_warns_about_leakage(tmp_path, capsys):
    pairs = make_texts(30, seed=12)
    train = write_json(tmp_path / "train.json", [messages_record(t, y) for t, y in pairs])
    val = write_json(tmp_path / "val.json", [messages_record(t, y) for t, y in pairs[:5]])
    assert main(["inspect", "--data_path", train, "--validation_path", val]) == 0
    out = capsys.readouterr().out
    assert "WARNING: LEAKAGE: 5 validation text(s) (100.0%) also appear in the training data" in out


def test_chunked_prediction_reports_windows(trained_xlmr, tmp_path):
    long_text = " ".join(["furthermore delve tapestry"] * 60)
    source = tmp_path / "long.txt"
    source.write_text(long_text + "\nshort lol\n")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
                 "--long_text", "chunks", "--stride", "8", "--max_length", "32"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["n_chunks"] > 3 and rows[1]["n_chunks"] == 1 and rows[0]["label"] == "GPT"


def test_class_weights_early_stopping_and_truncation(tiny_bert, tmp_path):
    pairs = make_texts(80, seed=13)
    pairs = [p for p in pairs if p[1] == "GPT"] + [p for p in pairs if p[1] == "Human"][:10]  # 40:10
    data = write_json(tmp_path / "imb.json", [{"text": t, "label": y} for t, y in pairs])
    out = tmp_path / "out"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *TRAIN_FLAGS, "--num_train_epochs", "30", "--class_weights", "balanced",
                 "--early_stopping_patience", "1", "--truncation", "head_tail", "--eval_steps", "2",
                 "--no_baseline", "--no_report"]) == 0
    meta = json.load(open(out / "m3cls.json"))
    evals = [e for e in meta["history"] if "eval_macro_f1" in e]
    assert meta["history"][-1]["step"] < 30 * 5  # stopped early, long before 30 epochs
    assert len(evals) >= 2 and "baseline" not in meta and not (out / "report").exists()

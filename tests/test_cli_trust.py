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


def _over_confident(trained, folder, texts, gap=10.0):
    """A copy of ``trained`` with its logits scaled so the median gap between them is ``gap``: the same
    decisions, far too sure of them (the tiny model itself is under-confident, with gaps near 0.01)."""
    import shutil

    import numpy as np
    from safetensors.torch import load_file, save_file

    from m3cls import Classifier

    logits = Classifier.from_pretrained(trained, precision="fp32").logits(texts)
    factor = gap / float(np.median(np.abs(logits[:, 0] - logits[:, 1])))
    shutil.copytree(trained, folder)
    weights = load_file(str(folder / "model.safetensors"))
    for name in ("classifier.out_proj.weight", "classifier.out_proj.bias"):
        weights[name] = weights[name] * factor
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    meta = json.load(open(folder / "m3cls.json"))
    meta["temperature"] = 1.0  # as if never calibrated
    (folder / "m3cls.json").write_text(json.dumps(meta))
    return folder


def test_calibrate_saves_a_temperature_that_predict_uses(trained_xlmr, tmp_path, capsys):
    data = _noisy_file(tmp_path)
    texts = [json.loads(line)["text"] for line in open(data)]
    model = _over_confident(trained_xlmr, tmp_path / "model", texts)
    assert main(["calibrate", "--model_path", str(model), "--data_path", data]) == 0
    printed = capsys.readouterr().out
    meta = json.load(open(model / "m3cls.json"))
    assert f"temperature {meta['temperature']:.4f} fitted on 60 texts" in printed
    assert meta["temperature"] > 2  # an over-confident model is cooled, and the fitted value is what is saved
    # scored again from the saved folder: the saved temperature makes the probabilities honester
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model_path", str(model), "--data_path", data, "--output", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["after"]["temperature"] == meta["temperature"]
    assert scores["after"]["ece"] < scores["before"]["ece"] - 0.02
    assert scores["after"]["log_loss"] < scores["before"]["log_loss"]
    capsys.readouterr()
    assert main(["predict", "--model_path", str(model), "--text", "delve lol", "--json"]) == 0
    cooled = json.loads(capsys.readouterr().out)["probabilities"]
    assert main(["predict", "--model_path", str(model), "--text", "delve lol", "--json", "--temperature", "1"]) == 0
    hot = json.loads(capsys.readouterr().out)["probabilities"]
    assert max(cooled.values()) < max(hot.values())  # predict uses the saved temperature by default
    assert main(["predict", "--model_path", str(model), "--text", "delve lol"]) == 0
    from m3cls.cli.common import format_temperature

    assert f"Temperature: {format_temperature(meta['temperature'])}\n" in capsys.readouterr().out


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


def _spy_on_training(monkeypatch) -> dict:
    """Record the encoded training set (with its texts), the class weights and the Trainer that training built."""
    from m3cls.training import run as run_module
    from m3cls.training import trainer as trainer_module

    seen: dict = {"datasets": []}

    class Recorded(run_module.EncodedDataset):
        def __init__(self, encoder, texts, label_ids, **options):
            super().__init__(encoder, texts, label_ids, **options)
            self.texts = list(texts)
            seen["datasets"].append(self)

    original = trainer_module.build_trainer

    def build(*args, **kwargs):
        seen["class_weights"] = kwargs.get("class_weights")
        seen["trainer"] = original(*args, **kwargs)
        return seen["trainer"]

    monkeypatch.setattr(run_module, "EncodedDataset", Recorded)
    monkeypatch.setattr(trainer_module, "build_trainer", build)
    return seen


def test_class_weights_early_stopping_and_truncation(tiny_bert, tmp_path, monkeypatch):
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    pairs = make_texts(80, seed=13)
    pairs = [p for p in pairs if p[1] == "GPT"] + [p for p in pairs if p[1] == "Human"][:10]  # 40:10
    data = write_json(tmp_path / "imb.json", [{"text": t, "label": y} for t, y in pairs])
    out = tmp_path / "out"
    seen = _spy_on_training(monkeypatch)
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 *TRAIN_FLAGS, "--num_train_epochs", "30", "--class_weights", "balanced",
                 "--early_stopping_patience", "1", "--truncation", "head_tail", "--eval_steps", "2",
                 "--no_baseline", "--no_report"]) == 0
    meta = json.load(open(out / "m3cls.json"))
    evals = [e for e in meta["history"] if "eval_macro_f1" in e]
    assert meta["history"][-1]["step"] < 30 * 5  # stopped early, long before 30 epochs
    assert len(evals) >= 2 and "baseline" not in meta and not (out / "report").exists()

    # --class_weights balanced: n / (k * n_c) from the training split reaches the loss the Trainer minimises
    train_set = seen["datasets"][0]
    counts = np.bincount(train_set.label_ids, minlength=2)
    expected = len(train_set) / (2 * counts)
    assert counts[0] > 3 * counts[1] and np.allclose(seen["class_weights"], expected)
    logits, labels = torch.tensor([[2.0, -1.0], [0.5, 0.0], [-1.0, 1.0]]), torch.tensor([1, 0, 1])
    weighted = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(expected, dtype=torch.float32),
                                                 reduction="sum") / 3
    loss = seen["trainer"].compute_loss_func({"logits": logits}, labels)
    assert torch.isclose(loss, weighted) and not torch.isclose(loss, torch.nn.functional.cross_entropy(logits,
                                                                                                      labels))

    # --truncation head_tail: a long text keeps its first quarter and its end, and the contract says so
    assert meta["truncation"] == "head_tail"
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    room = 64 - 2  # [CLS] text [SEP]
    long = 0
    for text, ids in zip(train_set.texts, train_set.input_ids):
        full = tokenizer(text)["input_ids"]
        if len(full) <= 64:
            assert ids == full
            continue
        long += 1
        assert ids == full[: 1 + room // 4] + full[len(full) - 1 - (room - room // 4):]
    assert long >= 5

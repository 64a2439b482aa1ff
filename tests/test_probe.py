"""--method probe: a frozen encoder and a small head, through every command that uses a model."""

import json
import os

import numpy as np
import pytest
from conftest import make_texts, write_json

from m3cls.cli import main

# mean pooling: a randomly initialised encoder's first token barely depends on the text (std ~0.002)
PROBE_FLAGS = ["--method", "probe", "--max_length", "64", "--precision", "fp32", "--pooling", "mean", "--seed", "7"]


@pytest.fixture(scope="session")
def probe_xlmr(tiny_xlmr, messages_file, tmp_path_factory) -> str:
    """A probe on the tiny XLM-R, fitted through the CLI once for the session."""
    out = str(tmp_path_factory.mktemp("runs") / "probe")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *PROBE_FLAGS]) == 0
    return out


def test_probe_folder_holds_encoder_head_and_contract(probe_xlmr):
    names = set(os.listdir(probe_xlmr))
    assert {"config.json", "model.safetensors", "probe_head.safetensors", "tokenizer.json", "m3cls.json",
            "validation_predictions.jsonl", "report"} <= names
    meta = json.load(open(os.path.join(probe_xlmr, "m3cls.json")))
    assert meta["head"] == "probe" and meta["pooling"] == "mean" and meta["normalize"] is False
    assert meta["method"] == "probe" and meta["metrics"]["macro_f1"] >= 0.9
    assert meta["probe"]["kind"] == "logreg" and meta["probe"]["texts"] == 120
    assert [r["rung"] for r in meta["ladder"]] == ["tfidf", "probe"]
    assert "Ladder" in open(os.path.join(probe_xlmr, "report", "index.html")).read()


def assert_reproduces_validation(folder: str, data_path: str, seed: int) -> None:
    """The head fitted on cached embeddings (numpy) and the saved encoder+pooling+head module (torch) agree."""
    from m3cls import Classifier
    from m3cls.data.readers import ReadOptions, read_labeled, stratified_split

    _, validation = stratified_split(read_labeled(data_path, ReadOptions()), 0.1, seed)
    rows = [json.loads(line) for line in open(os.path.join(folder, "validation_predictions.jsonl"))]
    predicted = Classifier.from_pretrained(folder, precision="fp32").predict(validation.texts)
    assert [r["label"] for r in rows] == validation.labels
    for row, p in zip(rows, predicted):
        assert p.probabilities == pytest.approx(row["probabilities"], abs=1e-4)


def test_saved_model_reproduces_the_validation_probabilities(probe_xlmr, messages_file):
    assert_reproduces_validation(probe_xlmr, messages_file, 7)


def test_predict_evaluate_calibrate_on_a_probe(probe_xlmr, tmp_path, capsys):
    import shutil

    assert main(["predict", "--model_path", probe_xlmr, "--text", "furthermore delve tapestry", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "GPT"
    pairs = make_texts(40, seed=31)
    data = write_json(tmp_path / "t.json", [{"text": t, "label": y} for t, y in pairs])
    out = tmp_path / "preds.jsonl"
    assert main(["predict", "--model_path", probe_xlmr, "--input", data, "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["label"] == y for r, (_, y) in zip(rows, pairs)) / len(pairs) >= 0.85
    assert main(["evaluate", "--model_path", probe_xlmr, "--data_path", data, "--output", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["after"]["accuracy"] >= 0.85
    model = tmp_path / "model"
    shutil.copytree(probe_xlmr, model)
    flipped = write_json(tmp_path / "f.json", [{"text": t, "label": y if i % 4 else ("Human" if y == "GPT" else "GPT")}
                                               for i, (t, y) in enumerate(make_texts(60, seed=32))])
    assert main(["calibrate", "--model_path", str(model), "--data_path", flipped]) == 0
    meta = json.load(open(model / "m3cls.json"))
    assert meta["head"] == "probe" and meta["calibration"]["fitted_on"] == flipped and meta["temperature"] != 1.0


def test_export_onnx_matches_torch_and_serves(probe_xlmr, tmp_path):
    from m3cls import Classifier
    from m3cls.metrics.classification import softmax

    exported = str(tmp_path / "onnx")
    assert main(["export", "--model_path", probe_xlmr, "--output", exported, "--quantize", "int8"]) == 0
    assert json.load(open(os.path.join(exported, "m3cls.json")))["head"] == "probe"
    texts = [t for t, _ in make_texts(100, seed=33)]
    reference = Classifier.from_pretrained(probe_xlmr, precision="fp32").logits(texts)
    fp32 = Classifier.from_pretrained(exported, backend="onnx", onnx_file="model.onnx").logits(texts)
    int8 = Classifier.from_pretrained(exported, backend="onnx").logits(texts)
    assert np.abs(softmax(fp32) - softmax(reference)).max() < 1e-3
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.97


def test_serve_a_probe(probe_xlmr):
    import httpx
    from test_serving import start

    with start(probe_xlmr) as live:
        r = httpx.post(f"{live.url}/predict", json={"texts": ["furthermore delve tapestry", "lol yeah kinda"]})
        assert r.status_code == 200
        assert [p["label"] for p in r.json()["predictions"]] == ["GPT", "Human"]


def test_distributed_predict_with_a_probe(probe_xlmr, tmp_path):
    from test_distributed import torchrun

    from m3cls import Classifier

    pairs = make_texts(9, seed=34)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(t for t, _ in pairs) + "\n")
    out = tmp_path / "out.jsonl"
    done = torchrun("predict", "--model_path", probe_xlmr, "--input", str(source), "--output", str(out),
                    "--precision", "fp32")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    local = Classifier.from_pretrained(probe_xlmr, precision="fp32").predict([t for t, _ in pairs])
    assert [r["label"] for r in rows] == [p.label for p in local]


def test_python_api_probe_with_mlp_head_and_class_weights(tiny_bert, tmp_path):
    from m3cls import Classifier, TrainConfig, train

    pairs = make_texts(80, seed=35)
    pairs = [p for p in pairs if p[1] == "GPT"] + [p for p in pairs if p[1] == "Human"][:15]
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    result = train(TrainConfig(model_name_or_path=tiny_bert, data_path=data, method="probe", probe_head="mlp",
                               class_weights="balanced", pooling="mean", max_length=48, precision="fp32",
                               baseline=False, report=False), {"output_dir": str(tmp_path / "m"), "seed": 3})
    assert result.contract.head == "probe" and result.contract.info["probe"]["kind"] == "mlp"
    assert result.metrics["macro_f1"] >= 0.8
    assert_reproduces_validation(result.output_dir, data, 3)
    clf = Classifier.from_pretrained(result.output_dir, precision="fp32")
    # texts of 20 label words each: the tiny encoder's embeddings of 3-word texts were too close to call
    texts = [" ".join(["delve", "tapestry", "robust", "moreover"] * 5), " ".join(["lol", "dunno", "honestly",
                                                                                  "kinda"] * 5)]
    assert [p.label for p in clf.predict(texts)] == ["GPT", "Human"]


def test_chunks_train_on_averaged_windows_and_predict_with_them(tiny_xlmr, tmp_path):
    # logreg is linear: the mean of the windows' logits (prediction) is the logit of the mean embedding
    from m3cls import Classifier
    from m3cls.probe.embeddings import Embedder

    pairs = [(" ".join([t] * 4), y) for t, y in make_texts(40, seed=36)]
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    out = str(tmp_path / "m")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", out,
                 *PROBE_FLAGS, "--max_length", "24", "--long_text", "chunks", "--stride", "4", "--no_baseline",
                 "--no_report", "--cache_dir", "none"]) == 0
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    assert (meta["long_text"], meta["stride"], meta["max_length"]) == ("chunks", 4, 24)
    clf = Classifier.from_pretrained(out, precision="fp32")
    texts = [t for t, _ in pairs[:6]]
    logits, n_chunks = clf.logits_and_chunks(texts)
    assert min(n_chunks) > 1
    from m3cls.model.heads import head_logits, read_head

    embedder = Embedder(tiny_xlmr, max_length=24, long_text="chunks", stride=4, pooling="mean", precision="fp32")
    expected = head_logits(read_head(out), embedder.embed(texts))
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_int8_onnx_embedding_backend_is_exported_once(tiny_xlmr, messages_file, tmp_path, caplog):
    import logging

    cache = tmp_path / "cache"
    args = ["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, *PROBE_FLAGS,
            "--embed_backend", "onnx", "--cache_dir", str(cache), "--no_baseline", "--no_report"]
    with caplog.at_level(logging.INFO):
        assert main([*args, "--output_dir", str(tmp_path / "a")]) == 0
        assert main([*args, "--output_dir", str(tmp_path / "b"), "--probe_c", "0.3", "--max_length", "32"]) == 0
    assert sum("exporting the encoder" in r.getMessage() for r in caplog.records) == 1
    graphs = [f for _, _, files in os.walk(cache / "onnx") for f in files if f.endswith(".onnx")]
    assert graphs == ["model.int8.onnx"]
    meta = json.load(open(tmp_path / "a" / "m3cls.json"))
    assert meta["probe"]["backend"] == "onnx" and meta["metrics"]["macro_f1"] >= 0.9
    assert_reproduces_validation_labels(str(tmp_path / "a"), messages_file, 7)


def assert_reproduces_validation_labels(folder: str, data_path: str, seed: int) -> None:
    """int8 embeddings at training, torch at prediction: the same labels, probabilities close."""
    from m3cls import Classifier
    from m3cls.data.readers import ReadOptions, read_labeled, stratified_split

    _, validation = stratified_split(read_labeled(data_path, ReadOptions()), 0.1, seed)
    rows = [json.loads(line) for line in open(os.path.join(folder, "validation_predictions.jsonl"))]
    predicted = Classifier.from_pretrained(folder, precision="fp32").predict(validation.texts)
    for row, p in zip(rows, predicted):
        assert p.label == max(row["probabilities"], key=row["probabilities"].get)
        assert p.probabilities == pytest.approx(row["probabilities"], abs=0.05)


def test_sentence_transformers_pooling_config_is_followed(tiny_bert, tmp_path):
    import shutil

    from m3cls.model.heads import detect_pooling

    folder = tmp_path / "st"
    shutil.copytree(tiny_bert, folder)
    assert detect_pooling(str(folder))[:2] == ("cls", False)  # no sentence-transformers config: first token
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": False,
                                                                   "pooling_mode_mean_tokens": True}))
    assert detect_pooling(str(folder))[:2] == ("mean", True)
    assert detect_pooling(str(folder), "max")[:2] == ("max", True)
    assert detect_pooling("bundled")[:2] == ("mean", True)  # the packaged MiniLM is a sentence-transformers model


def test_head_folds_standardisation_into_the_weights():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from m3cls.metrics.classification import softmax
    from m3cls.probe.head import HeadSettings, fit_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)) * [1, 10, 0.01, 5, 1, 100] + [0, 3, -2, 0, 50, 0]
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(size=300) * 0.3 > 0.3).astype(int) + (x[:, 3] > 4)
    head = fit_head(x, y, 3, HeadSettings(c=0.5))
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000)).fit(x, y)
    np.testing.assert_allclose(softmax(head.logits(x)), reference.predict_proba(x), atol=1e-6)
    binary = fit_head(x, (y > 0).astype(int), 2)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y > 0)
    np.testing.assert_allclose(softmax(binary.logits(x)), reference.predict_proba(x), atol=1e-6)


@pytest.mark.parametrize("extra,message", [
    (["--method", "probe", "--lora_r", "8"], "--method probe keeps the encoder frozen"),
    (["--stride", "16"], "--stride 16 needs --long_text chunks"),
    (["--method", "probe", "--probe_head", "mlp", "--long_text", "chunks"], "--long_text chunks needs --probe_head"),
    (["--method", "probe", "--probe_head", "svm"], "--probe_head 'svm' is not one of: logreg, mlp"),
    (["--method", "probe", "--pooling", "last"], "--pooling 'last' is not one of"),
    (["--method", "distil"], "--method 'distil' is not one of: finetune, probe"),
])
def test_bad_probe_flags_exit_2_and_write_nothing(messages_file, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["train", "--model_name_or_path", "bundled", "--data_path", messages_file, "--output_dir", str(out),
                 *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()

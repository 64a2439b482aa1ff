"""Multi-label and regression models served over HTTP, on the web page, exported to ONNX, trained with LoRA,
and predicted by two processes."""

import json
import os

import httpx
import numpy as np
import pytest
from conftest import TASK_FLAGS, write_json
from test_serving import start

from m3cls.cli import main
from m3cls.cpukinds import int8_format

TEXTS = ["lol yeah dunno kinda", "furthermore delve tapestry seamless robust", "the a of and to"]


@pytest.mark.parametrize("run", ["multilabel_run", "regression_run"])
def test_serve_returns_what_the_classifier_predicts(request, run):
    from m3cls import Classifier

    model = request.getfixturevalue(run)["model"]
    local = Classifier.from_pretrained(model, precision="fp32").predict(TEXTS)
    with start(model) as live:
        body = httpx.post(f"{live.url}/predict", json={"texts": TEXTS}).json()
    rows = body["predictions"]
    if run == "regression_run":
        assert body["task"] == "regression" and set(rows[0]) == {"index", "value", "unknown_token_share"}
        np.testing.assert_allclose([r["value"] for r in rows], [p.value for p in local], atol=1e-4)
        return
    thresholds = json.load(open(os.path.join(model, "m3cls.json")))["thresholds"]
    assert body["task"] == "multi_label" and body["thresholds"] == pytest.approx(thresholds)
    assert [r["labels"] for r in rows] == [p.labels for p in local] and "casual" in rows[0]["labels"]
    assert set(rows[0]) == {"index", "labels", "probabilities", "unknown_token_share"}


@pytest.mark.parametrize("run", ["multilabel_run", "regression_run"])
def test_onnx_export_matches_torch(request, run, tmp_path):
    from m3cls import Classifier

    model = request.getfixturevalue(run)["model"]
    out = str(tmp_path / "onnx")
    assert main(["export", "--model_path", model, "--output", out, "--quantize", "int8"]) == 0
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    assert meta["task"] == json.load(open(os.path.join(model, "m3cls.json")))["task"]
    assert meta["onnx"]["int8"]["format"] == int8_format()  # the format accurate on this CPU, whatever its kind
    texts = [t for t in request.getfixturevalue(run)["val_texts"]]
    reference = Classifier.from_pretrained(model, precision="fp32").predict(texts)
    fp32 = Classifier.from_pretrained(out, backend="onnx", onnx_file="model.onnx").predict(texts)
    int8 = Classifier.from_pretrained(out, backend="onnx").predict(texts)
    if run == "regression_run":
        np.testing.assert_allclose([p.value for p in fp32], [p.value for p in reference], atol=1e-3)
        assert max(abs(p.value - q.value) for p, q in zip(int8, reference)) < 0.5  # scores span 0 to 10
        return
    for p, q in zip(fp32, reference):
        assert p.probabilities == pytest.approx(q.probabilities, abs=1e-3)
    agree = np.mean([p.labels == q.labels for p, q in zip(fp32, reference)])
    assert agree == 1.0 and np.mean([p.labels == q.labels for p, q in zip(int8, reference)]) >= 0.9


@pytest.mark.parametrize("kind", ["avx2", "amx"])
def test_int8_export_format_follows_the_cpu_kind(regression_run, tmp_path, fake_cpu, caplog, kind):
    import onnx

    from m3cls import Classifier

    fake_cpu(kind)
    out = str(tmp_path / "onnx")
    assert main(["export", "--model_path", regression_run["model"], "--output", out, "--quantize", "int8"]) == 0
    int8 = json.load(open(os.path.join(out, "m3cls.json")))["onnx"]["int8"]
    fmt = {"avx2": "u8u8", "amx": "u8s8"}[kind]
    assert int8["format"] == fmt and ("without VNNI" in int8["format_reason"]) == (kind == "avx2")
    graph = onnx.load(os.path.join(out, "model.int8.onnx")).graph
    products = {n.input[1] for n in graph.node if n.op_type in ("MatMulInteger", "QAttention")}
    weights = {i.data_type for i in graph.initializer if i.name in products}
    assert weights == {onnx.TensorProto.UINT8 if fmt == "u8u8" else onnx.TensorProto.INT8}
    fake_cpu("avx2")  # the folder now runs on a CPU without VNNI
    texts = regression_run["val_texts"]
    with caplog.at_level("WARNING", logger="m3cls.backends"):
        got = Classifier.from_pretrained(out, backend="onnx").predict(texts)
    assert ("can saturate" in caplog.text) == (fmt == "u8s8")
    if fmt == "u8u8":  # accurate on every CPU kind, so checked wherever the suite runs
        reference = Classifier.from_pretrained(regression_run["model"], precision="fp32").predict(texts)
        assert max(abs(p.value - q.value) for p, q in zip(got, reference)) < 0.5  # scores span 0 to 10


@pytest.mark.parametrize("task", ["multi_label", "regression"])
def test_lora_trains_saves_and_predicts_every_task(task, tmp_path, capsys, tiny_bert):
    from task_data import make_label_sets, make_scores

    pairs = (make_label_sets if task == "multi_label" else make_scores)(60, 3)
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    out = str(tmp_path / "lora")
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", out,
                 *TASK_FLAGS, "--num_train_epochs", "2", "--task", task, "--lora_r", "4", "--learning_rate", "1e-2",
                 "--no_report", "--no_baseline", "--validation_split", "0.2"]) == 0
    capsys.readouterr()
    assert "adapter_config.json" in os.listdir(out)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["problem_type"] == {"multi_label": "multi_label_classification", "regression": "regression"}[task]
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    assert meta["task"] == task and meta["lora"]["r"] == 4
    assert main(["predict", "--model_path", out, "--text", "lol yeah", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert ("labels" in row) == (task == "multi_label") and ("value" in row) == (task == "regression")
    assert main(["export", "--model_path", out, "--output", str(tmp_path / "onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", "--model_path", str(tmp_path / "onnx"), "--backend", "onnx", "--text", "lol yeah",
                 "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == set(row)


def test_two_process_prediction_of_a_multilabel_model(multilabel_run, tmp_path):
    from test_distributed import torchrun

    from m3cls import Classifier

    source = tmp_path / "in.txt"
    source.write_text("\n".join(multilabel_run["val_texts"][:15]) + "\n")
    out = tmp_path / "out.jsonl"
    done = torchrun("predict", "--model_path", multilabel_run["model"], "--input", str(source), "--output",
                    str(out), "--precision", "fp32", "--batch_size", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    local = Classifier.from_pretrained(multilabel_run["model"], precision="fp32").predict(
        multilabel_run["val_texts"][:15])
    assert [r["index"] for r in rows] == list(range(15)) and [r["labels"] for r in rows] == [p.labels for p in local]


def test_web_page_draws_threshold_marks_and_values(multilabel_run, regression_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_webpage import _driver, open_page

    driver = _driver(tmp_path)
    read = """return [...document.querySelectorAll('#bars .bar')].map(b => [b.dataset.label,
        parseFloat(b.dataset.threshold), b.querySelector('.mark').style.left, b.className]);"""
    try:
        with start(multilabel_run["model"]) as live:
            open_page(driver, live.url, "casual")
            driver.find_element(By.ID, "text").send_keys(TEXTS[0])
            driver.find_element(By.ID, "classify").click()
            WebDriverWait(driver, 20).until(lambda d: len(d.execute_script(read)) == 4)
            bars = {name: (cut, left, cls) for name, cut, left, cls in driver.execute_script(read)}
            thresholds = json.load(open(os.path.join(multilabel_run["model"], "m3cls.json")))["thresholds"]
            assert bars["casual"][0] == pytest.approx(thresholds["casual"])
            assert bars["casual"][1] == f"{100 * thresholds['casual']:.1f}%" and "top" in bars["casual"][2]
            assert "casual" in driver.find_element(By.ID, "result").text
        with start(regression_run["model"]) as live:
            open_page(driver, live.url, "value")
            driver.find_element(By.ID, "text").send_keys(TEXTS[1])
            driver.find_element(By.ID, "classify").click()
            WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "result").text.startswith("Value: "))
            shown = float(driver.find_element(By.ID, "result").text.split(": ")[1])
            from m3cls import Classifier

            expected = Classifier.from_pretrained(regression_run["model"], precision="fp32").predict(TEXTS[1:2])
            assert shown == pytest.approx(expected[0].value, rel=1e-3) and not driver.execute_script(read)
    finally:
        driver.quit()

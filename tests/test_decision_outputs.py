"""Issue 13's fields through the rest of the house: batch predict's writers (JSONL, Parquet, --on_error),
serve's batcher, probe models, the model card, and the refusals around them."""

import json
import logging
import os
import shutil
from types import SimpleNamespace

import httpx
import pytest
from conftest import MARKER, TRAIN_FLAGS, make_marker_texts, write_json

from m3cls.cli import main


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _marker_input(tmp_path, n=6, blank_at=2):
    """A .txt input of marker texts with one blank (bad) line at ``blank_at``."""
    texts = [t for t, _ in make_marker_texts(n, seed=9)]
    lines = texts[:blank_at] + [""] + texts[blank_at:]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), lines


def test_batch_predict_keeps_positions_with_decisions_and_attributions(marker_xlmr, tmp_path, capsys):
    source, lines = _marker_input(tmp_path)
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", marker_xlmr, "--input", source, "--output", str(out), "--on_error",
                 "skip", "--explain", "--abstain_below", "0.6", "--precision", "fp32"]) == 0
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(len(lines)))
    assert set(rows[2]) == {"index", "error"}
    for row, text in zip(rows, lines):
        if not text:
            continue
        assert [w for w, _ in row["attributions"]] == text.split()
        top = max(row["probabilities"].values())
        assert row["decision"] == ("uncertain" if top < 0.6 else row["label"])
        assert "unknown_token_share" in row


def test_parquet_output_holds_decisions_segments_and_attributions(marker_xlmr, tmp_path):
    import pyarrow.parquet as pq

    source, lines = _marker_input(tmp_path)
    jsonl, parquet = tmp_path / "p.jsonl", tmp_path / "p.parquet"
    flags = ["--model_path", marker_xlmr, "--input", source, "--on_error", "skip", "--explain", "--abstain_below",
             "0.6", "--long_text", "chunks", "--max_length", "8", "--segments", "--precision", "fp32"]
    assert main(["predict", *flags, "--output", str(jsonl)]) == 0
    assert main(["predict", *flags, "--output", str(parquet)]) == 0
    expected, got = _rows(jsonl), pq.read_table(parquet).to_pylist()
    assert [r["index"] for r in got] == list(range(len(lines))) and got[2]["error"] and got[2]["label"] is None
    for want, row in zip(expected, got):
        if "error" in want:
            continue
        assert row["decision"] == want["decision"]
        assert [[a["word"], a["score"]] for a in row["attributions"]] == want["attributions"]
        assert [(s["start"], s["end"]) for s in row["segments"]] == [(s["start"], s["end"]) for s in want["segments"]]
        assert len(row["segments"]) == row["n_chunks"] > 1


def test_explain_html_under_torchrun_is_refused(marker_xlmr, tmp_path, capsys, monkeypatch):
    source, _ = _marker_input(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    out, page = tmp_path / "p.jsonl", tmp_path / "why.html"
    assert main(["predict", "--model_path", marker_xlmr, "--input", source, "--output", str(out), "--explain_html",
                 str(page)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--explain_html is one page written by one process" in err[0]
    assert not out.exists() and not page.exists()


def test_serve_explains_through_the_batcher(marker_xlmr):
    from test_serving import start
    from test_serving_edge import _metrics

    from m3cls import Classifier

    texts = [f"the of {MARKER} and to", "it is was for on"]
    local = Classifier.from_pretrained(marker_xlmr, precision="fp32").predict(texts, explain=True)
    with start(marker_xlmr) as live:
        before = _metrics(live.url)[("m3cls_texts_total", ())]
        r = httpx.post(f"{live.url}/predict", json={"texts": texts, "explain": True})
        after = _metrics(live.url)[("m3cls_texts_total", ())]
        plain = httpx.post(f"{live.url}/predict", json={"texts": texts}).json()["predictions"]
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    for p, want in zip(predictions, local):
        assert [w for w, _ in p["attributions"]] == [w for w, _ in want.attributions]
        assert max(abs(a[1] - b[1]) for a, b in zip(p["attributions"], want.attributions)) < 1e-4
    assert max(predictions[0]["attributions"], key=lambda a: a[1])[0] == MARKER
    # everything ran as texts of the batcher: the texts; then per text, its unaltered input and one per word
    assert after - before == 2 * len(texts) + sum(len(t.split()) for t in texts)
    assert all("attributions" not in p for p in plain)


@pytest.fixture(scope="module")
def probe_model(tiny_xlmr, tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe-decisions")
    data = write_json(folder / "train.json", [{"text": t, "label": y} for t, y in make_marker_texts(80, seed=3)])
    out = str(folder / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", out, "--method",
                 "probe", "--max_length", "64", "--precision", "fp32", "--pooling", "mean", "--no_baseline",
                 "--no_report"]) == 0
    return out, data


def test_a_probe_model_takes_a_saved_rule_and_explains(probe_model, tmp_path, capsys):
    model, data = probe_model
    copy = str(tmp_path / "m")
    shutil.copytree(model, copy)
    assert json.load(open(os.path.join(copy, "m3cls.json")))["head"] == "probe"
    assert main(["calibrate", "--model_path", copy, "--data_path", data, "--abstain_below", "0.7"]) == 0
    assert json.load(open(os.path.join(copy, "m3cls.json")))["decision"]["abstain_below"] == 0.7
    source, lines = _marker_input(tmp_path)
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", copy, "--input", source, "--output", str(out), "--on_error", "skip",
                 "--explain", "--precision", "fp32"]) == 0
    rows = [r for r in _rows(out) if "error" not in r]
    assert len(rows) == len(lines) - 1
    for row in rows:
        assert row["decision"] == ("uncertain" if max(row["probabilities"].values()) < 0.7 else row["label"])
        assert len(row["attributions"]) == len(lines[row["index"]].split())


def test_the_model_card_states_the_operating_point(tmp_path):
    from m3cls.model.card import model_card
    from m3cls.model.contract import ModelContract

    target = {"metric": "fpr", "value": 0.01, "achieved": 0.0075, "interval": [0.0015, 0.0218],
              "interval_method": "Clopper-Pearson exact binomial, 95% two-sided", "fitted_on": "held.jsonl",
              "texts": 900, "positives": 500, "negatives": 400, "long_text": "truncate"}
    rule = {"temperature": 1.3, "positive_label": "GPT", "threshold": 0.8123, "abstain_below": 0.6,
            "aggregate": "mean", "target": target}
    contract = ModelContract(labels=("GPT", "Human"), max_length=64, decision=rule)
    card = model_card(contract, "detector")
    section = card.split("## Decision rule", 1)[1].split("\n## ", 1)[0]
    assert "`GPT` when its probability (at temperature 1.3) is at least 0.8123" in section
    assert "fpr at or under 0.01 on held.jsonl" in section and "achieved 0.0075" in section
    assert "0.0015 to 0.0218" in section and "under 0.6 is `uncertain`" in section
    assert "## Decision rule" not in model_card(contract.replace(decision=None), "detector")


def test_calibrate_rewrites_the_card_with_the_rule(trained_xlmr, tmp_path):
    from test_decisions import _noisy

    copy = str(tmp_path / "m")
    shutil.copytree(trained_xlmr, copy)
    assert "## Decision rule" not in open(os.path.join(copy, "README.md")).read()
    assert main(["calibrate", "--model_path", copy, "--data_path", _noisy(tmp_path), "--target_fpr", "0.05",
                 "--positive_label", "GPT", "--precision", "fp32"]) == 0
    threshold = json.load(open(os.path.join(copy, "m3cls.json")))["decision"]["threshold"]
    assert f"is at least {threshold:.6g}" in open(os.path.join(copy, "README.md")).read()


def test_serve_warns_when_the_threshold_was_chosen_on_windows(marker_xlmr, tmp_path, monkeypatch, caplog):
    from m3cls.model.contract import write_contract
    from m3cls.model.folder import read_contract
    from m3cls.serving import app as serving

    copy = str(tmp_path / "m")
    shutil.copytree(marker_xlmr, copy)
    rule = {"temperature": 1.0, "positive_label": "GPT", "threshold": 0.5, "abstain_below": None,
            "aggregate": "max", "target": None}
    monkeypatch.setattr(serving, "serve", lambda *a, **k: None)
    with caplog.at_level(logging.WARNING, logger="m3cls"):
        write_contract(copy, read_contract(copy).replace(decision=rule))
        assert main(["serve", "--model_path", copy]) == 0
        assert "chosen on documents read in windows" not in caplog.text
        write_contract(copy, read_contract(copy).replace(decision=rule, long_text="chunks", stride=4))
        assert main(["serve", "--model_path", copy]) == 0
    assert "chosen on documents read in windows" in caplog.text


def test_decisions_are_gated_on_a_single_label_task():
    from m3cls.errors import ConfigError
    from m3cls.metrics.decisions import rule_for
    from m3cls.tasks import get_task

    other = SimpleNamespace(task="multi_label", task_type=get_task("multi_label"), decision=None, labels=("a", "b"),
                            temperature=1.0)
    assert not rule_for(other, "truncate").active
    with pytest.raises(ConfigError, match="apply to single-label models; this model's task is multi_label"):
        rule_for(other, "truncate", abstain_below=0.5)


def test_fine_tuning_and_probe_both_train_on_windows(tiny_xlmr, tmp_path):
    data = write_json(tmp_path / "t.json", [{"text": t, "label": y} for t, y in make_marker_texts(40, seed=5)])
    for method in ("finetune", "probe"):
        out = tmp_path / method
        flags = [*TRAIN_FLAGS, "--num_train_epochs", "1"] if method == "finetune" else ["--method", "probe",
                                                                                         "--pooling", "mean"]
        assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                     *flags, "--max_length", "8", "--long_text", "chunks", "--stride", "2", "--no_baseline",
                     "--no_report", "--no_ladder"]) == 0
        meta = json.load(open(out / "m3cls.json"))
        assert (meta["long_text"], meta["stride"]) == ("chunks", 2), method

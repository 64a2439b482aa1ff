"""``evaluate --predictions`` under ``--on_error skip``: each row carries its record's position in the input,
not its count among the good records, so a row can be joined back to the record it scores."""

import json

from conftest import make_texts

from m3cls.cli import main


def test_prediction_rows_keep_input_positions_when_records_are_skipped(trained_xlmr, tmp_path, capsys):
    records = [{"text": t, "label": y} for t, y in make_texts(10, seed=61)]
    records[2] = {"text": "   ", "label": "GPT"}            # empty text
    records[5] = {"text": records[5]["text"]}                # no label
    source = tmp_path / "labelled.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "p.jsonl"
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(source), "--predictions", str(out),
                 "--on_error", "skip", "--precision", "fp32"]) == 0
    assert "read 10 records: 8 evaluated, 2 skipped" in capsys.readouterr().err
    rows = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert [r["index"] for r in rows] == [0, 1, 3, 4, 6, 7, 8, 9]
    assert all(r["true_label"] == records[r["index"]]["label"] for r in rows)
    # and each row's prediction is the one for the text at that position
    alone = tmp_path / "alone.jsonl"
    good = [records[r["index"]] for r in rows]
    alone.write_text("".join(json.dumps(r) + "\n" for r in good))
    expected = tmp_path / "e.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(alone), "--output", str(expected),
                 "--precision", "fp32"]) == 0
    predicted = [json.loads(line) for line in open(expected, encoding="utf-8")]
    assert [r["label"] for r in rows] == [p["label"] for p in predicted]

"""predict --input never loses track of a record: index is the input position, --on_error stop|skip, --max_errors."""

import io
import json
import sys

import pytest
from conftest import messages_record
from test_data import POSITION_CASES

from m3cls.cli import main


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _said(err: str) -> list[str]:
    """The command's own stderr lines (log lines, when logging writes here, are left out)."""
    return [line for line in err.strip().splitlines() if line.startswith("m3cls ")]


@pytest.mark.parametrize("name,content,bad,count", POSITION_CASES, ids=[c[0] for c in POSITION_CASES])
def test_skip_marks_bad_records_in_place_in_every_format(trained_xlmr, tmp_path, capsys, name, content, bad,
                                                         count):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
                 "--on_error", "skip"]) == 0
    rows = _rows(out.read_text(encoding="utf-8"))
    assert [r["index"] for r in rows] == list(range(count))
    assert {r["index"] for r in rows if "error" in r} == bad
    assert all(set(r) == {"index", "error"} and r["error"].startswith(str(source)) for r in rows if "error" in r)
    assert all(r["label"] in ("GPT", "Human") for r in rows if "error" not in r)
    err = _said(capsys.readouterr().err)
    assert err == [f"m3cls predict: {source}: read {count} records: {count - len(bad)} predicted, {len(bad)} "
                   f"skipped (first reasons: {err[0].split('(first reasons: ')[1]}"]
    assert err[0].count(" | ") == min(3, len(bad)) - 1


def test_blank_lines_on_stdin_keep_every_index(trained_xlmr, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("furthermore delve tapestry\n\nlol yeah kinda weird\n"))
    assert main(["predict", "--model_path", trained_xlmr, "--input", "-", "--on_error", "skip"]) == 0
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[1] == {"index": 1, "error": "stdin: line 2 is blank; every line of a plain text input is one text "
                                            "-- remove the line"}
    assert (rows[0]["label"], rows[2]["label"]) == ("GPT", "Human")  # index 2 is input line 3, not line 2
    assert "stdin: read 3 records: 2 predicted, 1 skipped (first reasons: line 2 is blank" in captured.err


def test_stop_on_stdout_leaves_every_line_before_the_bad_record(trained_xlmr, monkeypatch, capsys):
    lines = ["furthermore delve", "lol yeah", "moreover crucial", "kinda weird", "robust seamless", "", "after"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["predict", "--model_path", trained_xlmr, "--input", "-", "--batch_size", "2"]) == 2
    captured = capsys.readouterr()
    assert [r["index"] for r in _rows(captured.out)] == [0, 1, 2, 3, 4]  # complete lines, up to the bad one
    assert _said(captured.err) == [
        "m3cls predict: error: stdin: line 6 is blank; every line of a plain text input is one text -- remove the "
        "line (--on_error skip marks bad records and goes on)"]


def test_stop_writes_no_output_file(trained_xlmr, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "delve robust"}\n{"text": ""}\n{"text": "lol"}\n')
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out)]) == 2
    assert "in.jsonl: line 2: field 'text' is empty" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*.partial"))


def test_max_errors_turns_a_flood_into_a_stop(trained_xlmr, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": "delve" if i % 2 else ""}) + "\n" for i in range(10)))
    out = tmp_path / "out.jsonl"
    args = ["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
            "--on_error", "skip", "--max_errors"]
    assert main(args + ["3"]) == 2
    err = _said(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("m3cls predict: error: 4 bad records, more than --max_errors 3; "
                                               f"the last: {source}: line 7: field 'text' is empty")
    assert not out.exists()
    assert main(args + ["5"]) == 0  # 5 bad records are allowed
    assert sum("error" in r for r in _rows(out.read_text())) == 5


@pytest.mark.parametrize("extra,message", [
    (["--input", "IN", "--max_errors", "2"], "--max_errors needs --on_error skip"),
    (["--input", "IN", "--on_error", "skip", "--max_errors", "-1"], "--max_errors -1 must be 0 or more"),
    (["--text", "delve", "--on_error", "skip"], "--on_error and --max_errors apply to --input"),
])
def test_error_flags_are_checked(trained_xlmr, tmp_path, capsys, extra, message):
    source = tmp_path / "in.txt"
    source.write_text("delve\n")
    extra = [str(source) if e == "IN" else e for e in extra]
    assert main(["predict", "--model_path", trained_xlmr, *extra]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_skips_bad_records_or_stops(trained_xlmr, tmp_path, capsys):
    records = [messages_record("furthermore delve tapestry", "GPT"), messages_record("lol yeah kinda", "Human"),
               messages_record("", "GPT"), {"messages": [{"content": "q"}, {"content": "no label"}]},
               messages_record("moreover crucial", "GPT")]
    source = tmp_path / "labelled.json"
    source.write_text(json.dumps(records))
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(source)]) == 2
    assert "labelled.json: record 3: messages[1].content is empty" in capsys.readouterr().err
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(source), "--on_error", "skip"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("3 labelled texts\n")
    assert f"m3cls evaluate: {source}: read 5 records: 3 evaluated, 2 skipped (first reasons: record 3:" \
        in captured.err


def test_parquet_output_keeps_predictions_after_thousands_of_bad_records(trained_xlmr, tmp_path, capsys):
    import pyarrow.parquet as pq

    source = tmp_path / "in.jsonl"
    bad = ["{not json"] * 4200  # more than the first row group's 4,096 rows: all marked records
    good = [json.dumps({"text": "furthermore delve tapestry"}), json.dumps({"text": "lol yeah kinda weird"})]
    source.write_text("\n".join(bad + good) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out),
                 "--on_error", "skip"]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["index"] for r in rows] == list(range(4202))
    assert all(r["error"] and r["label"] is None for r in rows[:4200])
    assert [r["label"] for r in rows[4200:]] == ["GPT", "Human"] and rows[-1]["error"] is None
    assert set(rows[-1]["probabilities"]) == {"GPT", "Human"}

"""``predict --input`` for a person (issue 23): CSV output, --include_text, rounded probabilities on a terminal,
a progress bar with ETA on a terminal."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from m3cls.cli import main
from m3cls.cli.rows import count_records, write_csv
from m3cls.errors import OutputError

TEXTS = "the first text\n\nand the second text\nthird one\n"


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(TEXTS, encoding="utf-8")
    return str(path)


def test_csv_output_holds_what_jsonl_holds(trained_xlmr, texts, tmp_path):
    jsonl, table = tmp_path / "p.jsonl", tmp_path / "p.csv"
    for out in (jsonl, table):
        assert main(["predict", "--model_path", trained_xlmr, "--input", texts, "--output", str(out),
                     "--on_error", "skip", "--include_text"]) == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = list(csv.DictReader(open(table, encoding="utf-8")))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    assert rows[1]["error"] and not rows[1]["label"] and rows[0]["error"] == ""
    for line, row in zip(lines, rows):
        if "error" in line:
            continue
        assert row["label"] == line["label"] and row["text"] == line["text"]
        for name, p in line["probabilities"].items():
            assert float(row[f"probabilities.{name}"]) == pytest.approx(p, abs=1e-12)
    assert lines[2]["text"] == "and the second text"


def test_write_csv_waits_for_a_good_row_and_refuses_new_columns(tmp_path):
    out = tmp_path / "x.csv"
    write_csv(str(out), [{"index": 0, "error": "bad"}, {"index": 1, "label": "a", "probabilities": {"a": 0.5}}])
    assert out.read_text().splitlines() == ["index,label,probabilities.a,error", "0,,,bad", "1,a,0.5,"]
    with pytest.raises(OutputError, match="record 1 has the fields"):
        write_csv(str(tmp_path / "y.csv"), [{"index": 0, "label": "a"}, {"index": 1, "label": "b", "extra": 1}])
    assert not (tmp_path / "y.csv").exists()
    write_csv(str(out), [{"index": 0, "error": "bad"}])
    assert out.read_text().splitlines() == ["index,error", "0,bad"]


def _digits(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 99


def test_terminal_view_rounds_probabilities_and_files_keep_full_precision(trained_xlmr, texts, tmp_path,
                                                                          capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert main(["predict", "--model_path", trained_xlmr, "--input", texts, "--on_error", "skip"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(_digits(p) <= 4 for row in shown if "error" not in row for p in row["probabilities"].values())
    out = tmp_path / "p.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", texts, "--on_error", "skip",
                 "--output", str(out)]) == 0
    full = [json.loads(line) for line in out.read_text().splitlines()]
    assert max(_digits(p) for row in full if "error" not in row for p in row["probabilities"].values()) > 4


def test_progress_bar_with_eta_on_a_terminal_only(trained_xlmr, texts, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "p.jsonl")
    argv = ["predict", "--model_path", trained_xlmr, "--input", texts, "--on_error", "skip", "--output", out]
    assert main(argv) == 0
    assert "predict: 100%" not in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "4/4" in err


def test_count_records(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nx,1\ny,2")
    (tmp_path / "b.jsonl").write_text('{"text": "x"}\n{"text": "y"}\n')
    (tmp_path / "c.json").write_text("[]")
    assert count_records(str(tmp_path / "a.csv")) == 2
    assert count_records(str(tmp_path / "b.jsonl")) == 2
    assert count_records(str(tmp_path / "c.json")) is None and count_records("-") is None


def test_log_lines_go_through_the_bar_writer_on_a_terminal_only(monkeypatch):
    import logging

    from m3cls.cli.common import bar_safe_logging

    console = logging.StreamHandler(sys.stderr)
    logging.root.addHandler(console)
    try:
        with bar_safe_logging():
            assert console in logging.root.handlers            # not a terminal: untouched
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
        with bar_safe_logging():
            assert console not in logging.root.handlers
            assert any("Tqdm" in type(h).__name__ for h in logging.root.handlers)
        assert console in logging.root.handlers
    finally:
        logging.root.removeHandler(console)

"""Issue 25: no command deletes what it did not write, writers never share a partial file, and the trained
model survives failures of its extras (report, plots, card) and of the disk."""

import errno
import logging
import os
import shutil

import pytest
from conftest import make_texts, write_json

from m3cls.cli import main
from m3cls.errors import OutputError
from m3cls.files import atomic_open, staged_folder

FLAGS = ["--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
         "--max_length", "32", "--seed", "3", "--precision", "fp32", "--no_baseline"]


def _tree(folder) -> dict:
    """Every file under ``folder`` with its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


# -- export and --overwrite refuse folders m3cls did not write -------------------------------------------------
def test_export_to_the_current_folder_with_overwrite_keeps_its_files(trained_xlmr, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("a,b")
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model_path", trained_xlmr, "--output", ".", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "current folder" in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_export_into_the_model_folder_or_above_is_refused(trained_xlmr, tmp_path, capsys):
    model = tmp_path / "runs" / "model"
    shutil.copytree(trained_xlmr, model)
    before = _tree(tmp_path)
    for output in (model, tmp_path / "runs"):
        assert main(["export", "--model_path", str(model), "--output", str(output), "--overwrite"]) == 2
        assert "--model_path" in capsys.readouterr().err
    assert _tree(tmp_path) == before


def test_export_overwrite_refuses_a_folder_that_holds_no_export(trained_xlmr, tmp_path, capsys):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["export", "--model_path", trained_xlmr, "--output", str(other), "--overwrite"]) == 2
    assert "holds no m3cls ONNX export" in capsys.readouterr().err
    assert _tree(other) == {"cat.jpg": b"\xff\xd8"}


def test_overwrite_output_dir_refuses_the_current_folder_the_base_model_and_foreign_folders(
        tiny_bert, tmp_path, monkeypatch, capsys):
    data = write_json(tmp_path / "train.json", [{"text": t, "label": y} for t, y in make_texts(20, seed=2)])
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")   # a name a run writes, in a folder no run wrote
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    for out, says in ((".", "current folder"), (tiny_bert, "--model_name_or_path"), (str(foreign), "holds no")):
        assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", out,
                     "--overwrite_output_dir", *FLAGS]) == 2
        assert says in capsys.readouterr().err
    assert _tree(tmp_path) == before


# -- replacing a folder: the old copy goes last --------------------------------------------------------------
def _fill(folder, text):
    with open(os.path.join(folder, "model.onnx"), "w") as f:
        f.write(text)


def test_a_crash_while_moving_the_new_folder_in_keeps_one_complete_copy(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with staged_folder(str(target)) as staging:
        _fill(staging, "old")
    real_replace, crashed = os.replace, []

    def crash_on_the_move_in(src, dst):
        if os.fspath(dst) == str(target) and not crashed:
            crashed.append(src)
            raise OSError(errno.EIO, "power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_the_move_in)
    with pytest.raises(OSError):
        with staged_folder(str(target)) as staging:
            _fill(staging, "new")
    monkeypatch.setattr(os, "replace", real_replace)
    assert (target / "model.onnx").read_text() == "old"


def test_a_later_run_does_not_delete_what_an_interrupted_run_left(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(str(target)) as staging:
            _fill(staging, "first")
            left = set(os.listdir(tmp_path))
            with staged_folder(str(target)) as second:   # another run starts while the first one builds
                _fill(second, "second")
            assert set(os.listdir(tmp_path)) == left | {"out"}, "the second run touched the first's staging"
            assert open(os.path.join(staging, "model.onnx")).read() == "first"
            raise KeyboardInterrupt
    assert (target / "model.onnx").read_text() == "second"
    assert os.listdir(tmp_path) == ["out"]


# -- unique partial files -----------------------------------------------------------------------------------
def test_two_writers_of_one_output_leave_one_whole_file(tmp_path):
    path = tmp_path / "out.jsonl"
    a_lines = "".join(f'{{"run": "a", "i": {i}}}\n' for i in range(2000))
    b_lines = "".join(f'{{"run": "b", "i": {i}}}\n' for i in range(50))
    with atomic_open(str(path)) as a:
        a.write(a_lines[: len(a_lines) // 2])
        a.flush()
        with atomic_open(str(path)) as b:   # a second run writes the same output meanwhile and finishes first
            b.write(b_lines)
        assert path.read_text() == b_lines
        a.write(a_lines[len(a_lines) // 2:])
    assert path.read_text() == a_lines
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_two_final_saves_into_one_folder_do_not_share_a_staging_folder(trained_xlmr, tmp_path):
    from m3cls.model.folder import read_contract
    from m3cls.training.save import save_folder

    contract = read_contract(trained_xlmr)
    out = str(tmp_path / "model")

    def weights(tag):
        def write(staging):
            os.makedirs(staging, exist_ok=True)
            shutil.copy(os.path.join(trained_xlmr, "config.json"), staging)
            with open(os.path.join(staging, "model.safetensors"), "w") as f:
                f.write(tag)
        return write

    def first_run(staging):
        weights("a")(staging)
        save_folder(weights("b"), out, contract)   # a second train run saves while this one stages
        assert open(os.path.join(staging, "model.safetensors")).read() == "a"

    save_folder(first_run, out, contract)
    assert open(os.path.join(out, "model.safetensors")).read() == "a"
    assert not [n for n in os.listdir(out) if n.startswith(".m3cls-final")]


# -- the model survives its extras and a full disk --------------------------------------------------------------
def test_a_label_matplotlib_would_parse_as_math_trains_to_a_complete_model(tiny_bert, tmp_path):
    pairs = [(t, "$\\undefinedcmd$" if y == "GPT" else "a|b") for t, y in make_texts(40, seed=5)]
    data = write_json(tmp_path / "train.json", [{"text": t, "label": y} for t, y in pairs])
    out = tmp_path / "model"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", str(data), "--output_dir", str(out),
                 *FLAGS]) == 0
    assert {"m3cls.json", "config.json", "model.safetensors", "README.md"} <= set(os.listdir(out))
    assert (out / "report" / "index.html").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".m3cls-final")]


def test_a_failing_report_is_a_warning_and_the_model_is_saved(tiny_bert, tmp_path, monkeypatch, caplog):
    from m3cls.reports import pages

    def broken(*args, **kwargs):
        raise ValueError("plot failed")

    monkeypatch.setattr(pages, "write_report", broken)  # the single-label task's report page
    data = write_json(tmp_path / "train.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=6)])
    out = tmp_path / "model"
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", str(data), "--output_dir",
                     str(out), *FLAGS]) == 0
    assert "report could not be written (ValueError: plot failed)" in caplog.text
    assert {"m3cls.json", "model.safetensors"} <= set(os.listdir(out))


def test_a_full_disk_during_the_final_save_keeps_the_earlier_model(trained_xlmr, tmp_path):
    from m3cls.model.folder import read_contract
    from m3cls.training.save import save_folder

    out = tmp_path / "model"
    shutil.copytree(trained_xlmr, out)
    before = _tree(out)

    def disk_full(staging):
        os.makedirs(staging, exist_ok=True)
        (tmp_path / "model" / os.path.basename(staging) / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="model: cannot save the model \\(No space left on device\\)"):
        save_folder(disk_full, str(out), read_contract(trained_xlmr))
    assert _tree(out) == before

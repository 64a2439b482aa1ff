"""No transformers progress bar at save time (issue 23): "Writing model shards" (``save_pretrained``) stays off
the terminal when m3cls saves a model, finally or as a checkpoint, and m3cls' own bars still draw."""

from __future__ import annotations

import sys

import pytest

BAR = "Writing model shards"


@pytest.fixture
def bars_on(monkeypatch):
    """transformers' bars switched on, as on a terminal (the tests' stderr is not one); undone after the test."""
    from transformers.utils import logging as hf_logging

    monkeypatch.setattr(hf_logging, "_tqdm_active", True)


@pytest.fixture
def model(tiny_xlmr):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_xlmr, num_labels=2)


def test_the_final_save_draws_no_transformers_bar(model, bars_on, tmp_path, capsys):
    from m3cls.model.contract import ModelContract
    from m3cls.training.save import save_folder

    model.save_pretrained(tmp_path / "plain")   # the bar this is about, drawn by transformers itself
    assert BAR in capsys.readouterr().err
    save_folder(model.save_pretrained, str(tmp_path / "m3cls"), ModelContract(labels=("a", "b"), max_length=32))
    assert (tmp_path / "m3cls" / "model.safetensors").is_file()
    assert BAR not in capsys.readouterr().err
    model.save_pretrained(tmp_path / "again")   # quiet only inside the save: transformers' bars are back
    assert BAR in capsys.readouterr().err


def test_trainer_saves_and_checkpoints_draw_no_transformers_bar(model, bars_on, tmp_path, capsys):
    from transformers import TrainingArguments

    from m3cls.training.trainer import _Trainer

    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True)
    _Trainer(model=model, args=args).save_model(str(tmp_path / "checkpoint-1"))   # what _save_checkpoint calls
    assert (tmp_path / "checkpoint-1" / "model.safetensors").is_file()
    assert BAR not in capsys.readouterr().err


def test_m3cls_own_bars_still_draw_while_saving(capsys):
    from tqdm import tqdm

    from m3cls.model.loading import quiet_save_bars

    with quiet_save_bars():
        for _ in tqdm(range(3), desc="training", file=sys.stderr):
            pass
    assert "training: 100%" in capsys.readouterr().err

"""train --augment (issue 24): perturbed texts reach the training batches, seeded, recorded in the contract."""

from __future__ import annotations

import json
import re

import pytest
from conftest import TRAIN_FLAGS, make_texts, write_json

from m3cls.cli import main

PROBE = ["--method", "probe", "--max_length", "48", "--precision", "fp32", "--pooling", "mean"]


def test_fine_tuning_batches_hold_perturbed_texts(tiny_xlmr, tmp_path, monkeypatch):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    pairs = make_texts(32, seed=71)
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    seen = []
    original = DataCollatorWithPadding.__call__

    def recording(self, features):
        seen.extend(tuple(f["input_ids"]) for f in features)
        return original(self, features)

    monkeypatch.setattr(DataCollatorWithPadding, "__call__", recording)
    out = tmp_path / "m"
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                 *TRAIN_FLAGS, "--num_train_epochs", "1", "--validation_split", "0.25", "--no_baseline",
                 "--no_report", "--augment", "truncate_half", "--augment_prob", "1"]) == 0
    tok = AutoTokenizer.from_pretrained(tiny_xlmr)
    encode = lambda text: tuple(tok(text, truncation=True, max_length=64)["input_ids"])  # noqa: E731
    whole = {encode(t) for t, _ in pairs}
    trained = [ids for ids in seen if ids not in whole]  # validation batches hold whole texts
    assert trained, "no perturbed text reached a training batch"
    info = json.load(open(out / "m3cls.json"))  # info fields sit at the top level
    assert info["augment"] == {"perturbations": ["truncate_half"], "prob": 1.0, "seed": 7}
    # every training item is some text's first half: its ids (less the end token and the piece at the cut) start
    # that text's ids, and it is shorter
    assert all(any(ids[:-2] == w[:len(ids) - 2] and len(ids) < len(w) for w in whole) for ids in trained)


def test_probe_adds_perturbed_copies(tiny_xlmr, tmp_path, caplog):
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=72)])
    out = tmp_path / "p"
    with caplog.at_level("INFO"):
        assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                     *PROBE, "--no_baseline", "--no_report", "--augment", "homoglyphs,case",
                     "--augment_prob", "0.5"]) == 0
    added = [r.getMessage() for r in caplog.records if "perturbed copies" in r.getMessage()]
    copies, texts = (int(w) for w in re.findall(r"\d+", added[0]))
    assert 0.25 * texts <= copies <= 0.75 * texts  # about --augment_prob 0.5 of them
    assert json.load(open(out / "m3cls.json"))["augment"]["perturbations"] == ["homoglyphs", "case"]


@pytest.mark.parametrize("flags, message", [(["--augment", "typo"], "unknown perturbation 'typo'"),
                                            (["--augment", "case", "--augment_prob", "0"], "--augment_prob 0")])
def test_bad_augment_flags_are_one_line(tiny_xlmr, tmp_path, capsys, flags, message):
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(20)])
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir",
                 str(tmp_path / "m"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_probe_copies_are_perturbed_and_keep_their_labels():
    from m3cls.data.perturb import ZERO_WIDTH
    from m3cls.training.augment import probe_copies, settings_of

    pairs = make_texts(30, seed=73)
    texts, labels = [t for t, _ in pairs], [y for _, y in pairs]
    copies, copy_labels = probe_copies(texts, labels, settings_of("zero_width", 1.0, 0))
    assert len(copies) == len(texts) and copy_labels == labels
    assert all(c != t and "".join(ch for ch in c if ch not in ZERO_WIDTH) == t for c, t in zip(copies, texts))
    assert probe_copies(texts, labels, settings_of("zero_width", 1.0, 0)) == (copies, copy_labels)  # seeded

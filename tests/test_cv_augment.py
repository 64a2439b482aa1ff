"""cv --method probe --augment (issue 24): each fold's head is fitted on its training texts and the perturbed
copies of those, and scores its held-out texts as they are."""

from __future__ import annotations

import json
import zlib

import numpy as np
from conftest import make_texts, write_json

from m3cls.cli import main
from m3cls.training.augment import copies_of, settings_of


class _TaggingEmbedder:
    """Stands in for the encoder: each text's vector starts with the text's id, so what a head was fitted on and
    what it scored can be read back."""

    def __init__(self, ids: dict[str, int]):
        self.ids = ids

    def embed(self, texts):
        rows = []
        for text in texts:
            number = self.ids.setdefault(text, len(self.ids))
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            rows.append([number, *rng.normal(size=4), float("GPT" in text)])
        return np.array(rows, dtype=float)


def test_probe_folds_fit_on_augmented_training_texts_only(tiny_xlmr, tmp_path, monkeypatch):
    import m3cls.probe.head as head_module
    import m3cls.training.probe as probe_module

    pairs = make_texts(60, seed=17)
    texts = [t for t, _ in pairs]
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in pairs])
    ids = {t: i for i, t in enumerate(texts)}
    monkeypatch.setattr(probe_module, "make_embedder", lambda config, values: _TaggingEmbedder(ids))
    fitted, scored = [], []
    real_fit = head_module.fit_head

    def spy(x, y, *args, **kwargs):
        head = real_fit(x, y, *args, **kwargs)
        fitted.append((set(x[:, 0].astype(int).tolist()), len(x), y.tolist()))
        real_logits = head.logits
        head.logits = lambda rows: (scored.append(set(rows[:, 0].astype(int).tolist())), real_logits(rows))[1]
        return head

    monkeypatch.setattr(head_module, "fit_head", spy)
    out = tmp_path / "cv"
    assert main(["cv", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--output_dir", str(out),
                 "--method", "probe", "--folds", "3", "--seed", "5", "--augment", "homoglyphs,case",
                 "--augment_prob", "0.5", "--no_report"]) == 0
    copies = copies_of(texts, settings_of("homoglyphs,case", 0.5, 5))
    assert 10 <= len(copies) <= 50  # about half the texts have a copy
    copy_id = {i: ids[text] for i, text in copies}
    assert len(set(copy_id.values())) == len(copies) and min(copy_id.values()) >= len(texts)
    folds = [json.loads(line)["fold"] for line in open(out / "oof_predictions.jsonl")]
    assert len(fitted) == 3 == len(scored)
    for number, ((rows, count, labels), held_rows) in enumerate(zip(fitted, scored), 1):
        held = {i for i, f in enumerate(folds) if f == number}
        train = set(range(len(texts))) - held
        copied = {copy_id[i] for i in train if i in copy_id}
        assert copied and rows == train | copied and count == len(train) + len(copied)
        assert not rows & ({copy_id[i] for i in held if i in copy_id} | held)  # nothing of the held-out fold
        assert held_rows == held  # scored as they are: the original texts, no copy
        assert labels == [pairs[i][1] == "Human" for i in sorted(train)] + \
            [pairs[i][1] == "Human" for i, _ in copies if i in train]  # a copy keeps its text's label
    summary = json.load(open(out / "cv.json"))
    assert summary["augment"] == {"perturbations": ["homoglyphs", "case"], "prob": 0.5, "seed": 5}

"""Training-time augmentation with the perturbations of ``m3cls stress`` (``train --augment LIST``).

RADAR trains a detector against a paraphraser so cheap attacks stop working; this is the cheap version: each
time a training text is drawn, with probability ``--augment_prob`` it is replaced by a perturbed copy (one of
the listed perturbations, chosen and seeded from the seed, the text's index and how often it was drawn, so a
rerun draws the same). Fine-tuning perturbs on the fly (:class:`AugmentedDataset`); the probe, whose encoder is
frozen, adds one perturbed copy of a text with that probability (:func:`probe_copies`), embedded once and kept
in the embedding cache like every text; in ``m3cls cv --method probe`` each fold's head gets the copies of its
training texts, never of its held-out ones. The settings go into the contract's ``info["augment"]``.
"""

from __future__ import annotations

import random
from typing import Sequence

from ..data.perturb import parse_perturbations, perturb


def settings_of(augment: str | None, prob: float, seed: int) -> dict | None:
    """What the contract records: the perturbations, the probability and the seed (None without --augment)."""
    if augment is None:
        return None
    return {"perturbations": parse_perturbations(augment, "--augment"), "prob": prob, "seed": seed}


def _draw(settings: dict, text: str, key: str) -> str | None:
    """The perturbed text for this draw, or None when this draw keeps the text."""
    rng = random.Random(f"{settings['seed']}\x00{key}")
    if rng.random() >= settings["prob"]:
        return None
    return perturb(text, rng.choice(settings["perturbations"]), rng.randrange(2**31))


class AugmentedDataset:
    """A training set (:class:`m3cls.training.inputs.EncodedDataset`) whose items are perturbed on the fly."""

    def __init__(self, base, encoder, texts: Sequence[str], settings: dict):
        self.base, self.encoder, self.texts, self.settings = base, encoder, list(texts), settings
        self.label_ids, self.document_label_ids, self.bounds = base.label_ids, base.document_label_ids, base.bounds
        self.draws = [0] * len(self.texts)
        self.perturbed = 0  # items served perturbed so far

    def __len__(self) -> int:
        return len(self.base)

    def lengths(self) -> list[int]:
        return self.base.lengths()

    def __getitem__(self, i: int) -> dict:
        self.draws[i] += 1
        text = _draw(self.settings, self.texts[i], f"{i}\x00{self.draws[i]}")
        if text is None:
            return self.base[i]
        self.perturbed += 1
        ids = self.encoder.encode([text])[0]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": self.base.label_ids[i]}


def probe_copies(texts: Sequence[str], labels: Sequence, settings: dict) -> tuple[list[str], list]:
    """The probe's extra training texts: a perturbed copy of each text drawn, with its label."""
    copies = copies_of(texts, settings)
    return [text for _, text in copies], [labels[i] for i, _ in copies]


def copies_of(texts: Sequence[str], settings: dict) -> list[tuple[int, str]]:
    """(index of the text, its perturbed copy) for each text drawn: cross-validation gives a fold's head the
    copies of that fold's training texts only."""
    copies = []
    for i, text in enumerate(texts):
        changed = _draw(settings, text, str(i))
        if changed is not None and changed != text:
            copies.append((i, changed))
    return copies

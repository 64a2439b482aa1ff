"""Synthetic multi-label and regression data whose labels the tiny models can learn (words of the tiny
tokenizers' training corpus, see conftest.TOPICS)."""

from __future__ import annotations

import random

from conftest import COMMON, TOPICS

GROUPS = {"formal": TOPICS["GPT"][:5], "buzz": TOPICS["GPT"][5:], "casual": TOPICS["Human"][:5],
          "vague": TOPICS["Human"][5:]}


def make_label_sets(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """(text, label list) pairs: each text carries 0 to 2 of the 4 word groups (about 1.2 labels per text)."""
    rng = random.Random(seed)
    names = sorted(GROUPS)
    pairs = []
    for i in range(n):
        chosen = sorted(rng.sample(names, [0, 1, 1, 2, 2][i % 5]))
        words = [rng.choice(COMMON) for _ in range(rng.choice([3, 5, 8]))]
        words += [rng.choice(GROUPS[name]) for name in chosen for _ in range(3)]  # each label shows 3 times
        rng.shuffle(words)
        pairs.append((" ".join(words), chosen))
    return pairs


def make_scores(n: int, seed: int = 0) -> list[tuple[str, float]]:
    """(text, score) pairs: the score is 10 times the share of 'GPT' words in the text, so 0 to 10."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        share = rng.random()
        length = rng.choice([8, 12, 20])
        words = [rng.choice(TOPICS["GPT"]) if rng.random() < share else rng.choice(COMMON) for _ in range(length)]
        hits = sum(w in TOPICS["GPT"] for w in words)
        pairs.append((" ".join(words), round(10 * hits / length, 3)))
    return pairs

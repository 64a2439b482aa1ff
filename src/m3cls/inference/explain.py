"""Why a text got its label: word occlusion (leave-one-word-out), and the text shaded by it.

Method: each word's score is how much the probability of the decided label falls when that word's tokens are
taken out of the model's input (Li, Monroe & Jurafsky, 2016, "Understanding neural networks through
representation erasure"; Captum calls the family *occlusion*). Positive: the word pushed toward the label;
negative: against it. Scores are in probability units, so "delve: +0.31" reads as "without 'delve' the text
is 31 points less GPT".

Why occlusion and not integrated gradients (Captum): it needs only forward passes, so it explains exactly what
``predict`` computes on every backend (torch in bf16, and ONNX, which has no gradients), adds no dependency,
and its scores answer a question a user can check by deleting the word. Its price: one forward pass per word
(batched), against IG's 20-300 forward+backward steps per text; and like every per-word method it can miss
words that only matter together (two markers that each suffice both score low).

Words: regex words (a run of letters or digits, one CJK character, or one punctuation mark) merged with the
tokens that overlap them, so a subword token never splits a word and a multi-character Chinese token stays
whole. Only tokens the model reads are scored: with truncation, words cut off get no score; with
``--long_text chunks``, a word is taken out of every window that holds it and the document is re-aggregated.

Example::

    >>> from m3cls import Classifier
    >>> clf = Classifier.from_pretrained("runs/detector")                         # doctest: +SKIP
    >>> clf.predict(["We delve into the rich tapestry."], explain=True)[0].attributions  # doctest: +SKIP
    [['We', 0.01], ['delve', 0.42], ['into', 0.0], ['the', -0.01], ['rich', 0.03], ['tapestry', 0.37], ['.', 0.0]]
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..metrics.classification import softmax
from .segments import aggregate

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+|[^\\w\\s]|_")


@dataclass
class Word:
    """One unit of attribution: its character span and the token positions (in the full encoding) it covers."""

    start: int
    end: int
    tokens: list[int]


def words_of(text: str, offsets: Sequence[tuple[int, int] | None]) -> list[Word]:
    """Regex words merged with the tokens overlapping them; ``offsets[i]`` is token i's span (None: special).

    >>> [(w.start, w.end, w.tokens) for w in words_of("un-do it", [None, (0, 2), (2, 4), (4, 5), (6, 8), None])]
    [(0, 2, [1]), (2, 5, [2, 3]), (6, 8, [4])]
    """
    spans = [m.span() for m in WORD.finditer(text)]
    parent = list(range(len(spans)))
    owners: dict[int, list[int]] = {}
    first = 0
    for i, span in enumerate(offsets):
        if span is None or span[1] <= span[0]:
            continue
        while first < len(spans) and spans[first][1] <= span[0]:
            first += 1
        last = first   # spans are sorted and disjoint: the overlapping ones follow ``first`` (linear overall)
        while last < len(spans) and spans[last][0] < span[1]:
            last += 1
        hit = range(first, last)
        if not hit:
            continue  # a whitespace-only token (a bare sentencepiece '▁') belongs to no word
        for j in hit[1:]:
            parent[j] = parent[hit[0]]
        owners.setdefault(hit[0], []).append(i)
    groups: dict[int, Word] = {}
    for j, (start, end) in enumerate(spans):
        root = _root(parent, j)
        word = groups.setdefault(root, Word(start, end, []))
        word.start, word.end = min(word.start, start), max(word.end, end)
        word.tokens.extend(owners.get(j, []))
    return [w for w in groups.values() if w.tokens]


def _root(parent: list[int], j: int) -> int:
    while parent[j] != j:
        j = parent[j]
    return j


@dataclass
class Occlusions:
    """One text's occlusion plan: its words, and the model inputs to score (the windows as read, then each
    word taken out of each window that holds it); ``owners`` maps each variant back, None closing a word."""

    text: str
    words: list[Word]
    n_views: int
    variants: list[list[int]]
    owners: list[tuple[int, int] | None]


def plan_occlusions(clf, texts: Sequence[str]) -> list[Occlusions]:
    """Tokenize ``texts`` and lay out the inputs occlusion needs (no model call: a server tokenizes on its
    tokenizer thread and runs the variants through its batcher)."""
    encoder = clf.encoder
    out = []
    for text, (ids, offsets) in zip(texts, encoder.full_ids_with_offsets(texts)):
        views = encoder.index_views(len(ids), chunks=clf.long_text == "chunks")
        seen = {i for view in views for i in view}
        words = words_of(text, [o if i in seen else None for i, o in enumerate(encoder.text_offsets(offsets))])
        variants, owners = [[ids[i] for i in view] for view in views], []
        for word in words:  # each word out of each window that holds it
            gone = set(word.tokens)
            for v, view in enumerate(views):
                if gone.intersection(view):
                    owners.append((len(variants), v))
                    variants.append([ids[i] for i in view if i not in gone])
            owners.append(None)
        out.append(Occlusions(text, words, len(views), variants, owners))
    return out


def occlusion_scores(clf, plan: Occlusions, logits: np.ndarray, target: str) -> list[list]:
    """``[[word, score], ...]`` toward ``target`` (a label name) from the logits of ``plan.variants``."""
    names, rule = clf.labels.names, clf.rule
    positive = names.index(rule.positive_label) if rule.positive_label is not None else None
    base_windows = np.asarray(logits[: plan.n_views])
    k = names.index(target) if target in names else int(base_windows.mean(axis=0).argmax())

    def probability(windows: np.ndarray) -> float:
        doc = aggregate(windows, rule.aggregate, rule.temperature, positive)
        return float(softmax(doc[None], rule.temperature)[0, k])

    base, scores, windows = probability(base_windows), [], base_windows.copy()
    for owner in plan.owners:
        if owner is None:
            scores.append(base - probability(windows))
            windows = base_windows.copy()
        else:
            windows[owner[1]] = logits[owner[0]]
    return [[plan.text[w.start:w.end], round(s, 6)] for w, s in zip(plan.words, scores)]


def explain_texts(clf, texts: Sequence[str], targets: Sequence[str]) -> list[list[list]]:
    """Per text, ``[[word, score], ...]`` toward ``targets[i]`` (a label name), in text order."""
    out = []
    for text, target in zip(texts, targets):  # one text at a time: its variants are one model batch set
        plan = plan_occlusions(clf, [text])[0]
        out.append(occlusion_scores(clf, plan, clf.logits_from_ids(plan.variants), target))
    return out


def shade(text: str, attributions: Sequence[Sequence]) -> str:
    """The text as HTML, each scored word in a <mark> shaded by its score (orange: toward the label, blue:
    against it; opacity: share of the largest absolute score)."""
    peak = max((abs(s) for _, s in attributions), default=0.0) or 1.0
    parts, cursor = [], 0
    for word, score in attributions:
        at = text.find(word, cursor)
        if at < 0:
            continue
        colour = "216,130,59" if score >= 0 else "59,125,216"
        parts.append(html.escape(text[cursor:at]))
        parts.append(f'<mark data-score="{score:.6f}" title="{score:+.4f}" style="background:rgba({colour},'
                     f'{abs(score) / peak:.3f})">{html.escape(word)}</mark>')
        cursor = at + len(word)
    parts.append(html.escape(text[cursor:]))
    return "".join(parts)


def write_html(path: str, items: Sequence[tuple[str, object]]) -> None:
    """One page with each (text, prediction): its label and the text shaded by its attributions."""
    from ..files import atomic_open

    blocks = []
    for i, (text, p) in enumerate(items):
        decided = p.decision or p.label
        blocks.append(f'<section><h2>#{i}: {html.escape(decided)} ({p.probabilities.get(decided, 0):.3f})</h2>'
                      f'<p class="text">{shade(text, p.attributions or [])}</p></section>')
    page = ('<!doctype html><html><head><meta charset="utf-8"><title>m3cls explanations</title><style>'
            'body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}.text{line-height:1.7;'
            'white-space:pre-wrap}mark{color:inherit;border-radius:3px}</style></head><body>'
            '<h1>Why each text got its label</h1><p>Word occlusion: orange words pushed toward the label, blue '
            'against it; hover for the score (the fall in probability without the word).</p>'
            + "".join(blocks) + "</body></html>")
    with atomic_open(path) as f:
        f.write(page)

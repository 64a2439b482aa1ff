"""Model inputs from raw text: truncation from the head, the tail or both, and sliding windows.

:class:`TextEncoder` is the one function every consumer uses to turn texts into token ids, built from the
model contract, so training, prediction, serving and export always see the same inputs.

Works for any tokenizer by finding how many special tokens it puts before and after a text ([CLS] ... [SEP]
for BERT, <s> ... </s> for XLM-RoBERTa), so windows and cut texts keep them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.inspection import unknown_counts
from ..errors import ConfigError
from .contract import TRUNCATION_MODES, ModelContract


@dataclass(frozen=True)
class Encoded:
    """One text tokenized once: the id lists the model reads (the cut text, or its windows), each window's
    character span when asked for, and the counts of the whole text behind its unknown-token share."""

    views: list[list[int]]
    spans: list[tuple[int, int]] | None
    n_tokens: int
    n_unknown: int

    @property
    def unknown_share(self) -> float:
        """The share of the whole text's tokens (special ones included, none cut) that are the unknown token:
        ``m3cls inspect``'s definition, so a long text counts all of its tokens, not only those the model reads."""
        return self.n_unknown / max(1, self.n_tokens)


@dataclass(frozen=True)
class SpecialLayout:
    """How many special tokens a tokenizer adds before and after one text."""

    prefix: int
    suffix: int

    @classmethod
    def of(cls, tokenizer) -> "SpecialLayout":
        probe = "hello world"
        full = tokenizer(probe)["input_ids"]
        body = tokenizer(probe, add_special_tokens=False)["input_ids"]
        for start in range(len(full) - len(body) + 1):
            if full[start: start + len(body)] == body:
                return cls(start, len(full) - start - len(body))
        return cls(0, 0)

    def budget(self, max_length: int) -> int:
        """Text tokens that fit in one sequence of max_length."""
        room = max_length - self.prefix - self.suffix
        if room < 1:
            raise ConfigError(f"max_length {max_length} leaves no room for text after the special tokens")
        return room

    def truncate(self, ids: list[int], max_length: int, mode: str = "head") -> list[int]:
        """Cut a full token sequence (with special tokens) to max_length, keeping head, tail or both."""
        if len(ids) <= max_length:
            return ids
        if mode not in TRUNCATION_MODES:
            raise ConfigError(f"--truncation {mode!r} is not one of: {', '.join(TRUNCATION_MODES)}")
        keep = self.budget(max_length)
        head, body, tail = ids[: self.prefix], ids[self.prefix: len(ids) - self.suffix], ids[len(ids) - self.suffix:]
        if mode == "head":
            body = body[:keep]
        elif mode == "tail":
            body = body[-keep:]
        else:  # a quarter from the start, the rest from the end (Sun et al., 2019)
            first = keep // 4
            body = body[:first] + body[len(body) - (keep - first):]
        return head + body + tail

    def window_starts(self, n_body: int, max_length: int, stride: int) -> list[int]:
        """Where each window starts among a text's ``n_body`` text tokens (the one place windows are laid)."""
        keep = self.budget(max_length)
        if not 0 <= stride < keep:
            raise ConfigError(f"--stride {stride} must be at least 0 and below {keep} (the text tokens in one "
                              f"window of max_length {max_length})")
        return list(range(0, max(1, n_body - stride), keep - stride))

    def windows(self, ids: list[int], max_length: int, stride: int) -> list[list[int]]:
        """Overlapping windows of at most max_length tokens covering the whole text; ``stride`` tokens overlap."""
        if len(ids) <= max_length:
            return [ids]
        keep = self.budget(max_length)
        head, body, tail = ids[: self.prefix], ids[self.prefix: len(ids) - self.suffix], ids[len(ids) - self.suffix:]
        return [head + body[s: s + keep] + tail for s in self.window_starts(len(body), max_length, stride)]


class TextEncoder:
    """Texts to unpadded token id lists, exactly as the model contract says (truncation mode, windows).

    Example::

        >>> enc = TextEncoder.from_contract(tokenizer, contract)        # doctest: +SKIP
        >>> enc.encode(["a long text ..."])                               # doctest: +SKIP
        [[0, 1033, 88, 2]]
    """

    def __init__(self, tokenizer, max_length: int, truncation: str = "head", stride: int = 0):
        if truncation not in TRUNCATION_MODES:
            raise ConfigError(f"--truncation {truncation!r} is not one of: {', '.join(TRUNCATION_MODES)}")
        if max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {max_length}")
        self.tokenizer, self.max_length, self.truncation, self.stride = tokenizer, max_length, truncation, stride
        # texts are read whole on purpose and cut here (or split into windows): transformers' warning that a
        # sequence is longer than the model takes, "will result in indexing errors", would mislead
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True
        self.layout = SpecialLayout.of(tokenizer)
        self._memo: dict[str, np.ndarray] | None = None

    @classmethod
    def from_contract(cls, tokenizer, contract: ModelContract, max_length: int | None = None,
                      stride: int | None = None) -> "TextEncoder":
        """The contract's encoder; ``max_length`` and ``stride`` override it when given."""
        return cls(tokenizer, max_length or contract.max_length, contract.truncation,
                   contract.stride if stride is None else stride)

    def check_windows(self) -> None:
        """Fail now, not mid-file, when the stride does not fit a window."""
        self.layout.windows([0] * (self.max_length + 1), self.max_length, self.stride)

    @contextmanager
    def remembering(self):
        """Within the block, each text is tokenized once: its full token ids are kept (as int32 arrays, a few
        bytes per token) and reused by ``full_ids``, ``encode`` and ``windows``; forgotten when the outermost
        block ends.

        Training tokenizes its texts in full to inspect them, then again to embed or train on them; this makes
        that one pass (the Rust tokenizer cuts a text only after tokenizing all of it, so cutting is no cheaper).
        """
        outer, self._memo = self._memo, {} if self._memo is None else self._memo
        try:
            yield self
        finally:
            self._memo = outer

    def full_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Every token of every text, with special tokens, untruncated."""
        if self._memo is None:
            return self._tokenize(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
        for text, ids in zip(todo, self._tokenize(todo)):
            self._memo[text] = np.asarray(ids, dtype=np.int32)
        return [self._memo[t].tolist() for t in texts]

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(list(texts), truncation=False, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """One token id list per text, cut to max_length the contract's way, unpadded."""
        if self.truncation == "head" and self._memo is None:  # the tokenizer's own truncation: same, faster
            return self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                  return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [self.layout.truncate(ids, self.max_length, self.truncation) for ids in self.full_ids(texts)]

    def windows(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Per text, overlapping windows of at most max_length tokens that cover all of it."""
        return [self.layout.windows(ids, self.max_length, self.stride) for ids in self.full_ids(texts)]

    def read(self, texts: Sequence[str], chunks: bool = False, spans: bool = False) -> list[Encoded]:
        """Each text tokenized once, untruncated: what the model reads (cut as :meth:`encode` cuts, or the
        windows of :meth:`windows` with ``chunks``), the windows' character spans with ``spans``, and the
        counts behind the unknown-token share. Prediction and serving read texts this way, so counting the
        unknown tokens costs no second pass of the tokenizer."""
        if not texts:
            return []
        unk = self.tokenizer.unk_token_id
        if spans:
            return [Encoded(views, places, len(ids), unknown_counts([ids], unk)[0])
                    for (views, places), ids in self._spans_and_ids(texts, chunks)]
        out = []
        for ids, n_unknown in zip(full := self.full_ids(texts), unknown_counts(full, unk)):
            views = self.layout.windows(ids, self.max_length, self.stride) if chunks else \
                [self.layout.truncate(ids, self.max_length, self.truncation)]
            out.append(Encoded(views, None, len(ids), n_unknown))
        return out

    # -- the same inputs, with each token's place in the original text ------------------------------------
    def full_ids_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Every token of every text and its (start, end) character span; special tokens get (0, 0)."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError("segments and explanations need a fast tokenizer (a tokenizer.json in the model "
                              "folder), which gives each token's place in the text; this one is a slow tokenizer")
        out = self.tokenizer(list(texts), truncation=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False)
        return [(ids, [tuple(o) for o in offsets]) for ids, offsets in zip(out["input_ids"], out["offset_mapping"])]

    def index_views(self, n_tokens: int, chunks: bool) -> list[list[int]]:
        """Which token positions of a full encoding the model reads: one truncated view, or the windows."""
        positions = list(range(n_tokens))
        if chunks:
            return self.layout.windows(positions, self.max_length, self.stride)
        return [self.layout.truncate(positions, self.max_length, self.truncation)]

    def text_offsets(self, offsets: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
        """A full encoding's token spans with special tokens as None."""
        n, prefix, suffix = len(offsets), self.layout.prefix, self.layout.suffix
        return [None if i < prefix or i >= n - suffix else tuple(o) for i, o in enumerate(offsets)]

    def encode_with_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int] | None]]]:
        """What :meth:`encode` gives, with each kept token's character span (None for special tokens)."""
        out = []
        for ids, offsets in self.full_ids_with_offsets(texts):
            spans = self.text_offsets(offsets)
            kept = self.index_views(len(ids), chunks=False)[0]
            out.append(([ids[i] for i in kept], [spans[i] for i in kept]))
        return out

    def windows_with_spans(self, texts: Sequence[str]) -> list[list[tuple[list[int], tuple[int, int]]]]:
        """What :meth:`windows` gives, with each window's character span (start, end) in its text:
        ``text[start:end]`` runs from the window's first text token to its last, spaces around trimmed."""
        return [list(zip(views, places)) for (views, places), _ in self._spans_and_ids(texts, chunks=True)]

    def _spans_and_ids(self, texts: Sequence[str], chunks: bool):
        """Per text, ((the views the model reads, each view's character span), every token id of the text)."""
        for text, (ids, offsets) in zip(texts, self.full_ids_with_offsets(texts)):
            spans = self.text_offsets(offsets)
            views = self.index_views(len(ids), chunks=chunks)
            yield ([[ids[i] for i in view] for view in views],
                   [_window_span(text, [spans[i] for i in view]) for view in views]), ids


def _window_span(text: str, spans: list[tuple[int, int] | None]) -> tuple[int, int]:
    spans = [s for s in spans if s is not None and s[1] > s[0]]
    if not spans:
        return 0, 0
    start, end = spans[0][0], spans[-1][1]
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end

"""Token-level handling of long texts: truncation from the head, the tail or both, and sliding windows.

Works for any tokenizer by finding how many special tokens it puts before and after a text ([CLS] ... [SEP]
for BERT, <s> ... </s> for XLM-RoBERTa), so windows and cut texts keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

TRUNCATION_MODES = ("head", "tail", "head_tail")


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

    def windows(self, ids: list[int], max_length: int, stride: int) -> list[list[int]]:
        """Overlapping windows of at most max_length tokens covering the whole text; ``stride`` tokens overlap."""
        if len(ids) <= max_length:
            return [ids]
        keep = self.budget(max_length)
        if not 0 <= stride < keep:
            raise ConfigError(f"--stride {stride} must be at least 0 and below {keep} (the text tokens in one "
                              f"window of max_length {max_length})")
        head, body, tail = ids[: self.prefix], ids[self.prefix: len(ids) - self.suffix], ids[len(ids) - self.suffix:]
        step = keep - stride
        starts = list(range(0, max(1, len(body) - stride), step))
        return [head + body[s: s + keep] + tail for s in starts]

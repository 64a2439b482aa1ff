"""Cheap, deterministic text perturbations: the attacks that break AI-text detectors (RAID, MGTBench, HC3-Plus).

``m3cls stress`` applies each to labelled texts and measures what it does to a model; ``m3cls train
--augment`` applies them to training texts. Each takes a text and a ``random.Random`` and returns the changed
text (or the same text when there is nothing it can change, e.g. ``case`` on Chinese). :func:`perturb` seeds
the generator from the seed, the perturbation's name and the text itself, so a text is changed the same way
in every run and whatever order the texts come in.

- ``homoglyphs``: Latin letters replaced by Cyrillic and Greek look-alikes (a->а, o->ο, ...), 30% of those that have one;
- ``zero_width``: zero-width spaces and joiners inserted after 5% of the characters (at least one);
- ``whitespace``: spaces doubled, removed or turned into newlines (30% of them); texts without spaces get
  spaces or newlines inserted after 5% of their characters;
- ``punctuation_width``: every punctuation mark swapped between half width (ASCII) and full width;
- ``case``: 30% of the words upper-cased, lower-cased or title-cased;
- ``typos``: 10% of the Latin-script words (of 2 letters or more) get a character swapped, dropped, doubled or replaced;
- ``word_deletion``: 10% of the words (characters, for text without spaces) deleted, never all;
- ``sentence_reorder``: the sentences shuffled into a different order (texts of one sentence stay);
- ``truncate_half``: the first half of the text, cut at a space when one is near;
- ``simplified_traditional``: simplified Chinese to traditional (traditional to simplified when the text is
  already traditional) with OpenCC, an optional extra: ``pip install "m3cls[opencc]"``.

Example::

    >>> perturb("The model is robust.", "homoglyphs", seed=0) == perturb("The model is robust.", "homoglyphs", seed=0)
    True
    >>> perturb("你好，世界。", "punctuation_width")
    '你好,世界.'
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

from ..errors import ConfigError

HOMOGLYPHS = {"a": "а", "c": "с", "e": "е", "i": "і", "j": "ј", "o": "ο", "p": "р", "s": "ѕ", "x": "х", "y": "у",
              "A": "Α", "B": "В", "C": "С", "E": "Е", "H": "Н", "I": "І", "K": "К", "M": "М", "N": "Ν", "O": "О",
              "P": "Р", "T": "Т", "X": "Х", "Y": "Υ", "Z": "Ζ"}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d")
_HALF = ",.!?;:()[]\"'~%"
_FULL = "，。！？；：（）［］＂＇～％"
_TO_FULL = str.maketrans(_HALF, _FULL)
_TO_HALF = str.maketrans(_FULL + "、「」『』", _HALF + ",\"\"''")
_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*\s*")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _homoglyphs(text: str, rng: random.Random) -> str:
    return "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < 0.3 else c for c in text)


def _insert_after(text: str, rng: random.Random, share: float, choices: Sequence[str]) -> str:
    """``text`` with one of ``choices`` inserted after ``share`` of its characters (at least one, not at the end)."""
    if len(text) < 2:
        return text
    count = max(1, round(share * (len(text) - 1)))
    places = set(rng.sample(range(len(text) - 1), min(count, len(text) - 1)))
    return "".join(c + (rng.choice(choices) if i in places else "") for i, c in enumerate(text))


def _zero_width(text: str, rng: random.Random) -> str:
    return _insert_after(text, rng, 0.05, ZERO_WIDTH)


def _whitespace(text: str, rng: random.Random) -> str:
    if " " not in text:
        return _insert_after(text, rng, 0.05, (" ", "\n"))
    return "".join(rng.choice(("  ", "", "\n")) if c == " " and rng.random() < 0.3 else c for c in text)


def _punctuation_width(text: str, rng: random.Random) -> str:
    return "".join(c.translate(_TO_HALF) if c in _FULL or c in "、「」『』" else c.translate(_TO_FULL) for c in text)


def _words(text: str, rng: random.Random, share: float, change: Callable[[str, random.Random], str | None]) -> str:
    """Apply ``change`` to ``share`` of the space-separated words (None deletes the word)."""
    parts = re.split(r"(\s+)", text)
    out = []
    for part in parts:
        if part and not part.isspace() and rng.random() < share:
            part = change(part, rng)
        if part is not None:
            out.append(part)
    return "".join(out)


def _case(text: str, rng: random.Random) -> str:
    return _words(text, rng, 0.3, lambda w, r: r.choice((str.upper, str.lower, str.title))(w))


def _typo(word: str, rng: random.Random) -> str:
    if sum(c.lower() in _LETTERS for c in word) < 2:  # Latin words only: a Chinese run of characters stays
        return word
    i = rng.randrange(len(word) - 1)
    kind = rng.choice(("swap", "drop", "double", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(_LETTERS) + word[i + 1:]


def _typos(text: str, rng: random.Random) -> str:
    return _words(text, rng, 0.1, _typo)


def _word_deletion(text: str, rng: random.Random) -> str:
    if " " not in text.strip():  # no spaces (Chinese): delete characters instead
        kept = "".join(c for c in text if rng.random() >= 0.1)
        return kept or text
    kept = _words(text, rng, 0.1, lambda w, r: None)
    return re.sub(r"\s{2,}", " ", kept).strip() or text


def _sentence_reorder(text: str, rng: random.Random) -> str:
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    if len(sentences) < 2:
        return text
    order = list(range(len(sentences)))
    while order == sorted(order):
        rng.shuffle(order)
    joiner = "" if " " not in text else " "
    return joiner.join(sentences[i] for i in order)


def _truncate_half(text: str, rng: random.Random) -> str:
    half = len(text) // 2
    space = text.rfind(" ", 0, half + 1)
    cut = space if space > half * 0.8 else half
    return text[:cut].rstrip() or text[:max(1, half)]


def _simplified_traditional(text: str, rng: random.Random) -> str:
    s2t, t2s = _opencc()
    converted = s2t.convert(text)
    return converted if converted != text else t2s.convert(text)


_CONVERTERS: list = []


def _opencc():
    """OpenCC's simplified-to-traditional and traditional-to-simplified converters, made once."""
    if not _CONVERTERS:
        from ..files import require

        opencc = require("opencc", "opencc", "the simplified_traditional perturbation")
        _CONVERTERS.extend([opencc.OpenCC("s2t"), opencc.OpenCC("t2s")])
    return _CONVERTERS


PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "homoglyphs": _homoglyphs, "zero_width": _zero_width, "whitespace": _whitespace,
    "punctuation_width": _punctuation_width, "case": _case, "typos": _typos, "word_deletion": _word_deletion,
    "sentence_reorder": _sentence_reorder, "truncate_half": _truncate_half,
    "simplified_traditional": _simplified_traditional,
}
#: the perturbations that need an optional package, and the package
OPTIONAL = {"simplified_traditional": "opencc"}


def available(name: str) -> bool:
    """Whether ``name`` can run here (its optional package is installed)."""
    if name not in OPTIONAL:
        return True
    import importlib.util

    return importlib.util.find_spec(OPTIONAL[name]) is not None


def parse_perturbations(value: str | None, flag: str = "--perturbations") -> list[str]:
    """The names in ``a,b,c`` (all of them for None or ``all``); an unknown name is one error listing the names."""
    if value is None or value.strip() == "all":
        return list(PERTURBATIONS)
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown or not names:
        raise ConfigError(f"{flag}: unknown perturbation {', '.join(map(repr, unknown)) or repr(value)}; known: "
                          f"{', '.join(PERTURBATIONS)} (or 'all')")
    return names


def perturb(text: str, name: str, seed: int = 0) -> str:
    """``text`` changed by the perturbation ``name``, the same way for the same (text, name, seed)."""
    rng = random.Random(f"{seed}\x00{name}\x00{text}")
    return PERTURBATIONS[name](text, rng)

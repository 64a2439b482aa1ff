"""The shortcut audit: can surface features alone tell the labels apart?

A data set where every rewritten text ends with "。", or where only human texts hold double spaces, trains a
detector that reads punctuation, not style; it scores well on that data and fails on the next. This audit
computes surface features only (:data:`FEATURES`: length, line count, punctuation and whitespace rates,
character classes, the last character, digit share, ...) and cross-validates a logistic regression on them
(5 stratified folds, standardized features). It warns, with the tag ``SHORTCUT:`` and the features with the
strongest separation alone, when:

- two classes: the out-of-fold AUROC is at least :data:`AUROC_WARN` (0.8);
- more classes: the out-of-fold macro-F1 is at least halfway from chance (1/K for K classes) to 1, i.e.
  ``(1 + 1/K) / 2`` (0.67 for 3 classes, 0.625 for 4).

Silent otherwise. Single-label data only; at most :data:`SAMPLE` texts are used (a seeded sample). Runs in
``m3cls inspect`` and at the start of ``m3cls train``; it needs scikit-learn but never torch.

Example::

    >>> texts = [f"text number {i} here" + ("。" if i % 2 else "") for i in range(60)]
    >>> result = shortcut_audit(texts, ["GPT" if i % 2 else "Human" for i in range(60)])
    >>> result["flagged"], "ends_cjk_full_stop" in result["features"]
    (True, True)
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter
from typing import Sequence

import numpy as np

#: out-of-fold AUROC (two classes) at or above which the surface features alone are a shortcut
AUROC_WARN = 0.8
#: texts used at most (a seeded sample): the features are cheap, the point is a quick check
SAMPLE = 20_000
FOLDS = 5
_ZERO_WIDTH = "\u200b\u200c\u200d\ufeff"


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def surface_features(text: str) -> dict[str, float]:
    """The text's surface: what a model can read without reading the words."""
    n = len(text)
    cats = Counter(unicodedata.category(c)[0] for c in text)
    punct = [c for c in text if unicodedata.category(c).startswith("P")]
    last = text.rstrip()[-1:] or " "
    return {
        "log_chars": math.log1p(n), "log_words": math.log1p(len(text.split())), "lines": text.count("\n") + 1,
        "punctuation_rate": _share(len(punct), n),
        "full_width_punctuation_share": _share(sum(unicodedata.east_asian_width(c) in "FW" for c in punct), len(punct)),
        "whitespace_rate": _share(sum(c.isspace() for c in text), n), "double_spaces": text.count("  "),
        "leading_or_trailing_space": float(text != text.strip()),
        "digit_share": _share(sum(c.isdigit() for c in text), n),
        "uppercase_share": _share(sum(c.isupper() for c in text), n),
        "latin_share": _share(sum(c.isascii() and c.isalpha() for c in text), n),
        "cjk_share": _share(sum("\u4e00" <= c <= "\u9fff" for c in text), n),
        "symbol_share": _share(cats.get("S", 0), n), "zero_width": float(any(c in _ZERO_WIDTH for c in text)),
        "ends_cjk_full_stop": float(last == "。"), "ends_ascii_period": float(last == "."),
        "ends_other_punctuation": float(unicodedata.category(last).startswith("P") and last not in "。."),
        "ends_letter_or_digit": float(last.isalnum()),
        "starts_uppercase": float(text.lstrip()[:1].isupper()),
        "mean_word_length": float(np.mean([len(w) for w in text.split()])) if text.split() else 0.0,
    }


FEATURES = tuple(surface_features("a"))


def shortcut_audit(texts: Sequence[str], labels: Sequence, seed: int = 0) -> dict | None:
    """Out-of-fold scores of a logistic regression on surface features, and whether they flag a shortcut.

    None when the labels are not single-label (this runs before the task is resolved: label lists and numbers
    are not audited) or a class has fewer than 2 texts.
    """
    if not labels or isinstance(labels[0], (tuple, list, float)):  # single-label data only
        return None
    pairs = list(zip(texts, labels))
    if len(pairs) > SAMPLE:
        pairs = random.Random(seed).sample(pairs, SAMPLE)
    names = sorted({y for _, y in pairs})
    y = np.array([names.index(label) for _, label in pairs])
    smallest = min(Counter(y.tolist()).values())
    if len(names) < 2 or smallest < 2:
        return None
    x = np.array([list(surface_features(t).values()) for t, _ in pairs], dtype=np.float64)
    probs = _out_of_fold(x, y, min(FOLDS, smallest), seed)
    return _verdict(x, y, probs, names)


def _model(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def _out_of_fold(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(_model(seed), x, y, cv=cv, method="predict_proba")


def _verdict(x: np.ndarray, y: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    from sklearn.metrics import f1_score, roc_auc_score

    k = len(names)
    macro_f1 = float(f1_score(y, probs.argmax(1), average="macro"))
    out = {"texts": int(len(y)), "classes": k, "macro_f1": macro_f1, "auroc": None}
    if k == 2:
        out["auroc"] = float(roc_auc_score(y, probs[:, 1]))
        out["rule"] = f"two classes: out-of-fold AUROC >= {AUROC_WARN}"
        out["flagged"] = out["auroc"] >= AUROC_WARN
    else:
        bar = (1 + 1 / k) / 2
        out["rule"] = f"{k} classes: out-of-fold macro-F1 >= {bar:.3f}, halfway from chance (1/{k}) to 1"
        out["flagged"] = macro_f1 >= bar
    out["features"] = [FEATURES[i] for i in np.argsort(-_strength(x, y, k), kind="stable")[:3]]
    return out


def _strength(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """How well each feature alone separates the labels: for two classes its AUROC's distance from 0.5 (either
    direction); for more, the largest standardized weight of the fitted regression."""
    from sklearn.metrics import roc_auc_score

    if k == 2:
        return np.array([abs(roc_auc_score(y, x[:, i]) - 0.5) if np.ptp(x[:, i]) else 0.0
                         for i in range(x.shape[1])])
    return np.abs(_model(0).fit(x, y)[-1].coef_).max(axis=0)


def shortcut_warning(result: dict | None) -> str | None:
    """The ``SHORTCUT:`` warning line, or None when the audit found nothing to report."""
    if not result or not result["flagged"]:
        return None
    score = f"AUROC {result['auroc']:.3f}" if result["auroc"] is not None else f"macro-F1 {result['macro_f1']:.3f}"
    return (f"SHORTCUT: surface features alone (no words) separate the labels: a logistic regression on them "
            f"reaches out-of-fold {score} on {result['texts']} training texts ({result['rule']}); the features "
            f"that carry it most: {', '.join(result['features'])}. A model may learn these instead of the "
            f"content: normalize them (e.g. strip the final punctuation, collapse spaces) or add texts that break "
            f"the pattern")

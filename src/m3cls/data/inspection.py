"""Look at the data before spending hours on it: balance, duplicates, leakage, lengths, unknown tokens, and
surface-feature shortcuts (:mod:`m3cls.data.shortcuts`).

Multi-label data also gets texts per label, labels per text and label co-occurrence; regression data the
spread of its targets.

Example::

    >>> from m3cls.data.inspection import inspect_texts
    >>> r = inspect_texts(["a", "a", "b"], ["x", "x", "y"])
    >>> r["duplicates"]["count"], r["imbalance_ratio"]
    (1, 2.0)
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

#: unknown-token share above which the tokenizer most likely does not know the data's language
UNK_WARN_SHARE = 0.03
#: at prediction time, one text's unknown-token share above which it gets a warning. Higher than
#: ``UNK_WARN_SHARE`` (a data set's share) because one short text with an emoji or a rare symbol in it easily
#: has a few percent; a text mostly in a script the vocabulary lacks is far above it.
TEXT_UNK_WARN_SHARE = 0.10
#: cosine over hashed character 3-4-gram counts within words (scikit-learn's ``char_wb``) above which two texts
#: count as near-identical
NEAR_DUPLICATE_COSINE = 0.9
NEAR_DUPLICATE_CHARS = 1000


def text_key(text: str) -> str:
    """Identity of a text for duplicate checks: case and white space folded, hashed."""
    return hashlib.sha1(" ".join(text.split()).lower().encode("utf-8")).hexdigest()


def inspect_texts(texts: list[str], labels: list[str] | None) -> dict:
    """Class counts (per label for label sets; target statistics for numbers), imbalance ratio and duplicate
    texts within one split."""
    report: dict = {"records": len(texts)}
    if labels and isinstance(labels[0], float):
        report["target"] = target_stats(labels)
    elif labels and isinstance(labels[0], tuple):
        report.update(label_set_stats(labels))
    elif labels is not None:
        counts = Counter(labels)
        report["class_counts"] = dict(sorted(counts.items()))
        report["imbalance_ratio"] = max(counts.values()) / max(1, min(counts.values()))
    keys = Counter(text_key(t) for t in texts)
    repeated = {k: n for k, n in keys.items() if n > 1}
    report["duplicates"] = {"count": sum(n - 1 for n in repeated.values()), "distinct_texts_repeated":
                            len(repeated)}
    return report


def label_set_stats(label_sets: list[tuple[str, ...]]) -> dict:
    """Multi-label: texts per label, labels per text, texts with no label, and the 100 most frequent label pairs."""
    counts = Counter(n for names in label_sets for n in names)
    pairs = Counter((a, b) for names in label_sets for a in names for b in names if a < b)
    sizes = np.array([len(names) for names in label_sets])
    return {"class_counts": dict(sorted(counts.items())),
            "imbalance_ratio": max(counts.values()) / max(1, min(counts.values())) if counts else 1.0,
            "label_cardinality": float(sizes.mean()), "max_labels_per_text": int(sizes.max()),
            "texts_without_labels": int((sizes == 0).sum()),
            "distinct_label_sets": len({frozenset(names) for names in label_sets}),
            "cooccurrence": [{"labels": list(pair), "texts": n} for pair, n in pairs.most_common(100)]}


def target_stats(targets: list[float]) -> dict:
    """Regression: the targets' mean, spread and percentiles, and how many distinct values they take."""
    y = np.asarray(targets, dtype=np.float64)
    return {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()), "max": float(y.max()),
            "percentiles": {f"p{q}": float(np.percentile(y, q)) for q in (5, 25, 50, 75, 95)},
            "distinct_values": int(len(np.unique(y)))}


def overlap(train_texts: list[str], val_texts: list[str]) -> dict:
    """Validation texts that also appear in training (after folding case and white space): leakage."""
    train_keys = {text_key(t) for t in train_texts}
    shared = [i for i, t in enumerate(val_texts) if text_key(t) in train_keys]
    return {"count": len(shared), "share_of_validation": len(shared) / max(1, len(val_texts)),
            "examples": [val_texts[i][:80] for i in shared[:3]]}


def token_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Every token of every text, special tokens included, untruncated: what the token figures count."""
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=True, truncation=False, return_attention_mask=False,
                     return_token_type_ids=False)["input_ids"]


def unknown_counts(ids: list[list[int]], unk_id: int | None) -> list[int]:
    """Per text, how many of its tokens are the unknown token (0 for a tokenizer without one)."""
    return [0 if unk_id is None else sum(1 for t in x if t == unk_id) for x in ids]


def unknown_token_shares(tokenizer, texts: list[str]) -> list[float]:
    """Per text, the share of its tokens that are the unknown token: the same count as ``token_stats``.

    >>> class Tok:  # a stand-in: one token per character, "?" unknown, plus two special tokens
    ...     unk_token_id = 0
    ...     def __call__(self, texts, **kw):
    ...         return {"input_ids": [[1] + [0 if c == "?" else 2 for c in t] + [1] for t in texts]}
    >>> unknown_token_shares(Tok(), ["ab", "??"])
    [0.0, 0.5]
    """
    ids = token_ids(tokenizer, texts)
    return [n / max(1, len(x)) for n, x in zip(unknown_counts(ids, tokenizer.unk_token_id), ids)]


def char_gram_vectors(texts: list[str], chars: int = NEAR_DUPLICATE_CHARS, buckets: int = 2**20,
                      chunk: int = 2000):
    """Per text, the counts of its character 3- and 4-grams inside words (each word padded with a space at both
    ends, as scikit-learn's ``char_wb`` analyzer does), after folding case and white space and keeping the first
    ``chars`` characters; each gram size hashed into ``buckets`` columns, L2-normalised: a sparse row per text.

    Vectorised in numpy, ``chunk`` texts at a time: the words are joined by two spaces and a gram counts unless
    it holds two spaces in a row (so it spans words); a gram's code points are mixed FNV-style (xor then
    multiply) and its bucket is the top bits of the mix. Twice as fast as scikit-learn's HashingVectorizer on
    the 2,225 BBC News articles (``python benchmarks/startup.py``), and it needs no scikit-learn. One difference: a word of
    one character yields no 4-gram (scikit-learn counts its padded 3 characters once more).

    >>> v = char_gram_vectors(["The cat sat.", "the  cat sat", "Stocks fell"])
    >>> [round(float((v[0] @ v[i].T).toarray()[0, 0]), 2) for i in (1, 2)]
    [0.82, 0.0]
    """
    from scipy.sparse import csr_matrix, hstack, vstack

    bits = buckets.bit_length() - 1
    if 1 << bits != buckets:
        raise ValueError(f"buckets must be a power of 2, got {buckets}")
    if len(texts) > chunk:
        return vstack([char_gram_vectors(texts[i: i + chunk], chars, buckets, chunk)
                       for i in range(0, len(texts), chunk)], format="csr")
    folded = [" " + "  ".join(" ".join(t.split()).lower()[:chars].split()) + " " for t in texts]
    codes = np.frombuffer("".join(folded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    lengths = np.array([len(t) for t in folded], dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    space = codes == 32
    # double[i]: how many "two spaces in a row" start before position i (a gram that holds one spans words)
    double = np.concatenate([[0], np.cumsum(space[:-1] & space[1:])])
    parts = []
    with np.errstate(over="ignore"):  # the hash wraps around 2**64 on purpose
        for n, salt in ((3, 0x9E3779B97F4A7C15), (4, 0xC2B2AE3D27D4EB4F)):
            grams = np.maximum(lengths - n + 1, 0)
            offsets = np.concatenate([[0], np.cumsum(grams)])
            # the start of every n-gram that lies inside one text, text by text
            starts = np.repeat(first - offsets[:-1], grams) + np.arange(offsets[-1])
            inside = double[starts + n - 1] == double[starts]
            row = np.repeat(np.arange(len(folded)), grams)[inside]
            starts = starts[inside]
            h = np.full(len(starts), salt, dtype=np.uint64)
            for j in range(n):
                h = (h ^ codes[starts + j]) * np.uint64(0x100000001B3)
            columns = ((h * np.uint64(0xFF51AFD7ED558CCD)) >> np.uint64(64 - bits)).astype(np.int32)
            indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(folded)))])
            parts.append(csr_matrix((np.ones(len(columns), np.float32), columns, indptr),
                                    shape=(len(texts), buckets)))
    vectors = hstack(parts, format="csr")  # 3-grams and 4-grams in columns of their own
    vectors.sum_duplicates()
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    vectors.data /= np.repeat(np.where(norms > 0, norms, 1.0), np.diff(vectors.indptr))
    return vectors


def near_duplicates(train_texts: list[str], val_texts: list[str], threshold: float = NEAR_DUPLICATE_COSINE,
                    sample: int = 5000) -> dict:
    """Validation texts with a near-identical (not identical) training text: character 3-4-gram cosine.

    Catches copies that differ in spacing, punctuation or a few words, which the exact overlap misses; works
    for any script (Chinese has no spaces). Compares the first ``NEAR_DUPLICATE_CHARS`` characters of each text
    (near-copies agree there too; it keeps the check to a fraction of a second on 2,000 news articles) and checks
    at most ``sample`` validation texts.
    """
    if not train_texts or not val_texts:
        return {"count": 0, "share_of_validation": 0.0, "threshold": threshold, "checked": 0, "examples": []}
    if len(val_texts) > sample:
        rng = np.random.default_rng(0)
        val_texts = [val_texts[i] for i in sorted(rng.choice(len(val_texts), sample, replace=False))]
    train, val = char_gram_vectors(train_texts), char_gram_vectors(val_texts)
    train_keys = {text_key(t) for t in train_texts}
    found = []
    for start in range(0, val.shape[0], 512):
        best = (val[start: start + 512] @ train.T).max(axis=1).toarray().ravel()
        for offset, score in enumerate(best):
            text = val_texts[start + offset]
            if score >= threshold and text_key(text) not in train_keys:
                found.append((text, float(score)))
    return {"count": len(found), "share_of_validation": len(found) / len(val_texts), "threshold": threshold,
            "checked": len(val_texts), "examples": [t[:80] for t, _ in found[:3]]}


def shared_groups(train_groups: list[str] | None, val_groups: list[str] | None) -> int:
    """Groups (``--group_column``) with records on both sides of the split."""
    if train_groups is None or val_groups is None:
        return 0
    return len(set(train_groups) & set(val_groups))


def token_stats(tokenizer, texts: list[str], max_length: int, sample: int = 5000, full_ids=None) -> dict:
    """Token-length percentiles, the share cut at max_length, and the unknown-token share (on a sample).

    ``full_ids`` (texts -> untruncated token ids) tokenizes; by default the tokenizer itself (training passes
    its :class:`~m3cls.model.tokens.TextEncoder`'s, which keeps them for the model inputs)."""
    if len(texts) > sample:
        rng = np.random.default_rng(0)
        texts = [texts[i] for i in rng.choice(len(texts), sample, replace=False)]
    ids = full_ids(texts) if full_ids else token_ids(tokenizer, texts)
    lengths = np.array([len(x) for x in ids])
    total = int(lengths.sum())
    unknown = sum(unknown_counts(ids, tokenizer.unk_token_id))
    return {
        "sampled_texts": len(texts),
        "length_percentiles": {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)} |
        {"max": int(lengths.max())},
        "max_length": max_length,
        "truncated_share": float((lengths > max_length).mean()),
        "unknown_token_share": unknown / max(1, total),
    }


def training_unknown_share(info: dict) -> float | None:
    """The training split's unknown-token share, as training recorded it in ``m3cls.json`` (None if absent).

    Training stores its data inspection under ``info["inspection"]``; ``tokens.unknown_token_share`` is measured
    on (a sample of up to 5,000 of) the training texts.
    """
    tokens = ((info or {}).get("inspection") or {}).get("tokens") or {}
    share = tokens.get("unknown_token_share")
    return float(share) if isinstance(share, (int, float)) and not isinstance(share, bool) else None


def unknown_text_warning(share: float, training_share: float | None) -> str | None:
    """One warning line for a text whose unknown-token share is above ``TEXT_UNK_WARN_SHARE``, else None.

    >>> unknown_text_warning(0.62, 0.01)[:50]
    'this text: 62.0% unknown tokens; training data: 1.'
    >>> unknown_text_warning(0.05, 0.01) is None
    True
    """
    if share <= TEXT_UNK_WARN_SHARE:
        return None
    return (f"this text: {share:.1%} unknown tokens; training data: {_percent(training_share)}. The model's "
            f"vocabulary most likely does not cover its language, so the prediction is unreliable")


class UnknownTally:
    """Over a stream of predicted texts: how many have an unknown-token share above ``TEXT_UNK_WARN_SHARE``."""

    def __init__(self) -> None:
        self.texts = 0
        self.affected = 0
        self.worst: tuple[float, int | None] = (0.0, None)

    def add(self, position: int | None, share: float) -> None:
        """Count one text; ``position`` (its index in the output, if any) names the worst one."""
        self.texts += 1
        self.affected += int(share > TEXT_UNK_WARN_SHARE)
        if share > self.worst[0]:
            self.worst = (share, position)

    def warning(self, training_share: float | None, what: str = "predicted records") -> str | None:
        """One summary line when any text was affected, else None."""
        if not self.affected:
            return None
        share, position = self.worst
        where = "" if position is None else f"index {position}, "
        return (f"{self.affected} of {self.texts} {what} ({self.affected / self.texts:.1%}) have more than "
                f"{TEXT_UNK_WARN_SHARE:.0%} unknown tokens (the most: {where}{share:.1%}); training data: "
                f"{_percent(training_share)}. The model's vocabulary most likely does not cover their language, "
                f"so their predictions are unreliable")


def _percent(share: float | None) -> str:
    return "not recorded" if share is None else f"{share:.1%}"


def inspect_splits(train, validation, tokenizer=None, max_length: int = 512, random_split: bool = False,
                   full_ids=None) -> dict:
    """Inspect a train/validation pair (``TextData``): per split, their overlap (exact, near-identical, shared
    groups), and tokens if a tokenizer (``full_ids`` as in :func:`token_stats`). ``random_split`` says validation
    was drawn at random from train."""
    report = {"train": inspect_texts(train.texts, train.labels),
              "validation": inspect_texts(validation.texts, validation.labels),
              "overlap": overlap(train.texts, validation.texts),
              "near_duplicates": dict(near_duplicates(train.texts, validation.texts), random_split=random_split),
              "shared_groups": shared_groups(train.groups, validation.groups)}
    if tokenizer is not None:
        report["tokens"] = token_stats(tokenizer, train.texts, max_length, full_ids=full_ids)
    from .shortcuts import shortcut_audit

    report["shortcuts"] = shortcut_audit(train.texts, train.labels)
    return report


def warnings_for(report: dict, model_name: str = "the model", windows: bool = False) -> list[str]:
    """Plain-language warnings for what an inspection found (``windows``: long texts are read in windows, so
    none is cut)."""
    out = []
    leak = report.get("overlap")
    if leak and leak["count"]:
        out.append(f"LEAKAGE: {leak['count']} validation text(s) ({leak['share_of_validation']:.1%}) also appear "
                   f"in the training data, so validation scores will be too optimistic; deduplicate across splits")
    near = report.get("near_duplicates")
    if near and near["count"]:
        fix = ("records from one source (a paragraph and its LLM rewrites) should stay on one side: give "
               "--group_column" if near.get("random_split") else "check that the split keeps sources apart")
        out.append(f"NEAR-DUPLICATES: {near['count']} validation text(s) ({near['share_of_validation']:.1%}) have a "
                   f"near-identical text in the training data (character 3-4-gram cosine >= {near['threshold']}), "
                   f"so validation scores may be too optimistic; {fix}")
    if report.get("shared_groups"):
        out.append(f"LEAKAGE: {report['shared_groups']} group(s) have records in both the training and the "
                   f"validation data; keep each group on one side")
    for split in ("train", "validation"):
        dup = report.get(split, {}).get("duplicates", {})
        if dup.get("count"):
            out.append(f"{dup['count']} duplicate text(s) in the {split} data")
    from .shortcuts import shortcut_warning

    shortcut = shortcut_warning(report.get("shortcuts"))
    if shortcut:
        out.append(shortcut)
    ratio = report.get("train", {}).get("imbalance_ratio", 1.0)
    if ratio >= 5:
        out.append(f"classes are imbalanced ({ratio:.1f}:1 largest to smallest); consider --class_weights "
                   f"balanced and read macro-F1 rather than accuracy")
    tokens = report.get("tokens")
    if tokens and tokens["unknown_token_share"] > UNK_WARN_SHARE:
        out.append(f"UNKNOWN TOKENS: {tokens['unknown_token_share']:.1%} of tokens map to the unknown token of "
                   f"{model_name}: its vocabulary most likely does not cover the language of this data (an "
                   f"English-only model given Chinese text, for example); use a multilingual model such as "
                   f"BAAI/bge-m3")
    if tokens and tokens["truncated_share"] > 0.2 and not windows:
        out.append(f"{tokens['truncated_share']:.0%} of texts are longer than max_length {tokens['max_length']} "
                   f"tokens and will be cut; consider a larger --max_length, --truncation head_tail, or "
                   f"'predict --long_text chunks'")
    return out

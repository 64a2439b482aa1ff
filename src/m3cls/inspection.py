"""Look at the data before spending hours on it: balance, duplicates, leakage, lengths, unknown tokens.

Multi-label data also gets texts per label, labels per text and label co-occurrence; regression data the
spread of its targets.

Example::

    >>> from m3cls.inspection import inspect_texts
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


def _key(text: str) -> str:
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
    keys = Counter(_key(t) for t in texts)
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
    train_keys = {_key(t) for t in train_texts}
    shared = [i for i, t in enumerate(val_texts) if _key(t) in train_keys]
    return {"count": len(shared), "share_of_validation": len(shared) / max(1, len(val_texts)),
            "examples": [val_texts[i][:80] for i in shared[:3]]}


def token_stats(tokenizer, texts: list[str], max_length: int, sample: int = 5000) -> dict:
    """Token-length percentiles, the share cut at max_length, and the unknown-token share (on a sample)."""
    if len(texts) > sample:
        rng = np.random.default_rng(0)
        texts = [texts[i] for i in rng.choice(len(texts), sample, replace=False)]
    ids = tokenizer(texts, add_special_tokens=True, truncation=False, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    unk = tokenizer.unk_token_id
    total = int(lengths.sum())
    unknown = sum(sum(1 for t in x if t == unk) for x in ids) if unk is not None else 0
    return {
        "sampled_texts": len(texts),
        "length_percentiles": {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)} |
        {"max": int(lengths.max())},
        "max_length": max_length,
        "truncated_share": float((lengths > max_length).mean()),
        "unknown_token_share": unknown / max(1, total),
    }


def inspect_splits(train, validation, tokenizer=None, max_length: int = 512) -> dict:
    """Inspect a train/validation pair (``TextData``): per split, their overlap, and tokens if a tokenizer."""
    report = {"train": inspect_texts(train.texts, train.labels),
              "validation": inspect_texts(validation.texts, validation.labels),
              "overlap": overlap(train.texts, validation.texts)}
    if tokenizer is not None:
        report["tokens"] = token_stats(tokenizer, train.texts, max_length)
    return report


def warnings_for(report: dict, model_name: str = "the model") -> list[str]:
    """Plain-language warnings for what an inspection found."""
    out = []
    leak = report.get("overlap")
    if leak and leak["count"]:
        out.append(f"LEAKAGE: {leak['count']} validation text(s) ({leak['share_of_validation']:.1%}) also appear "
                   f"in the training data, so validation scores will be too optimistic; deduplicate across splits")
    for split in ("train", "validation"):
        dup = report.get(split, {}).get("duplicates", {})
        if dup.get("count"):
            out.append(f"{dup['count']} duplicate text(s) in the {split} data")
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
    if tokens and tokens["truncated_share"] > 0.2:
        out.append(f"{tokens['truncated_share']:.0%} of texts are longer than max_length {tokens['max_length']} "
                   f"tokens and will be cut; consider a larger --max_length, --truncation head_tail, or "
                   f"'predict --long_text chunks'")
    return out

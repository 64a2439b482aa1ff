"""What predict, evaluate, calibrate and inspect print and write for multi-label and regression models.

Shared by the command modules (like ``common``); single-label output stays in the command modules as it was.
"""

from __future__ import annotations

_MULTI_KEYS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
_REGRESSION_KEYS = ("rmse", "mae", "r2", "pearson", "spearman")


def format_task_inspection(part: dict) -> list[str]:
    """Extra inspect lines for one split: label sets (multi-label) or targets (regression)."""
    if "target" in part:
        t = part["target"]
        pct = ", ".join(f"{k} {v:.4g}" for k, v in t["percentiles"].items())
        return [f"  targets: mean {t['mean']:.4g}, std {t['std']:.4g}, min {t['min']:.4g}, max {t['max']:.4g}; "
                f"{pct}; {t['distinct_values']} distinct values"]
    if "label_cardinality" not in part:
        return []
    pairs = ", ".join(f"{'+'.join(c['labels'])}: {c['texts']}" for c in part["cooccurrence"][:8])
    return [f"  labels per text {part['label_cardinality']:.2f} (max {part['max_labels_per_text']}); texts with "
            f"no label: {part['texts_without_labels']}; distinct label sets: {part['distinct_label_sets']}",
            f"  labels together most often: {pairs or 'none'}"]

"""The slice part of the HTML report (``m3cls evaluate --by``): one table and one plot per column.

With a positive label the plot shows each slice's detection rate and false-positive rate at the model's decision
with their 95% intervals; without one, each slice's accuracy.
"""

from __future__ import annotations

import html
import re

from .pages import _save, _table


def slices_section(plt, folder: str, result: dict) -> tuple[list[tuple[str, str]], str]:
    """(figures, HTML) for ``result = {"slices": ..., "slice_settings": ...}``."""
    settings = result["slice_settings"]
    detector = settings.get("positive_label") is not None
    figures, parts = [], []
    for column, values in result["slices"].items():
        header = ["slice", "n", "accuracy", "macro-F1"]
        rows = []
        for value, s in values.items():
            row = [value + (" (few)" if s["few"] else ""), s["n"], s["accuracy"], _cell(s.get("macro_f1"))]
            if detector:
                row += detector_cells(s)
            rows.append(row)
        if detector:
            header += DETECTOR_HEADER
        parts.append(f"<h3>By {html.escape(column)}</h3>" + _table(rows, header))
        figures.append((f"By {column}: " + ("detection rate and false-positive rate at the model's decision "
                                            "(95% intervals)" if detector else "accuracy"),
                        _plot(plt, folder, column, values, detector)))
    note = (f"<p>Slices with fewer than {settings['min_records']} records are marked (few).")
    if detector:
        note += (f" Positive label {html.escape(settings['positive_label'])}; the TPR thresholds are set on all "
                 f"{settings['negatives']} negatives of the file, and AUROC scores each slice's positives against "
                 f"them.")
    return figures, note + "</p>" + "".join(parts)


DETECTOR_HEADER = ["detection rate", "FPR", "TPR at FPR 1%", "TPR at FPR 5%", "AUROC"]


def detector_cells(s: dict) -> list:
    """A slice's (or a perturbation's) detection rate, FPR, TPR at FPR 1% and 5%, and AUROC; '-' for none."""
    tpr = s["tpr_at_fpr"]
    values = [s["detection_rate"]["rate"], s["fpr"]["rate"], tpr.get("0.01", {}).get("rate"),
              tpr.get("0.05", {}).get("rate"), s["auroc"]]
    return [_cell(v) for v in values]


def _cell(value):
    return "-" if value is None else value


def _plot(plt, folder: str, column: str, values: dict, detector: bool) -> str:
    names = list(values)
    fig, ax = plt.subplots(figsize=(6.5, max(2.2, 0.35 * len(names) + 1)))
    ys = range(len(names))
    if detector:
        for offset, key, color in ((-0.18, "detection_rate", "tab:blue"), (0.18, "fpr", "tab:red")):
            rates = [values[n][key] for n in names]
            shown = [(y + offset, r) for y, r in zip(ys, rates) if r["rate"] is not None]
            ax.errorbar([r["rate"] for _, r in shown], [y for y, _ in shown], fmt="o", color=color, capsize=3,
                        xerr=[[r["rate"] - r["interval"][0] for _, r in shown],
                              [r["interval"][1] - r["rate"] for _, r in shown]], label=key.replace("_", " "))
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.barh(list(ys), [values[n]["accuracy"] for n in names], color="tab:green")
        ax.set_xlabel("accuracy")
    ax.set_yticks(list(ys), [n[:30] for n in names])
    ax.set_xlim(0, 1.02)
    return _save(fig, folder, f"slices_{re.sub(r'[^A-Za-z0-9_-]', '_', column)}.png")

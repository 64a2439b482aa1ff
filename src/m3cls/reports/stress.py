"""The report page of ``m3cls stress --report``: the figures per perturbation and a plot of the flip rates."""

from __future__ import annotations

import html
import os

from .pages import _pyplot, _save, _table, write_page
from .slices import DETECTOR_HEADER, detector_cells


def write_stress_report(folder: str, result: dict, title: str = "m3cls stress") -> str:
    """``folder/index.html`` with the table and the flip-rate plot; returns its path."""
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    detector = result["positive_label"] is not None
    rows, header = [], ["perturbation", "changed", "flip rate", "accuracy"]
    if detector:
        header += DETECTOR_HEADER
    for name, s in [("clean", {**result["clean"], "changed_share": 0.0, "flip_rate": 0.0}),
                    *result["perturbations"].items()]:
        row = [name, s["changed_share"], s["flip_rate"], s["accuracy"]]
        if detector:
            row += detector_cells(s)
        rows.append(row)
    names = list(result["perturbations"])
    fig, ax = plt.subplots(figsize=(6.5, max(2.2, 0.35 * len(names) + 1)))
    ax.barh(names, [result["perturbations"][n]["flip_rate"] for n in names], color="tab:red")
    ax.set_xlabel("share of decisions flipped")
    ax.set_xlim(0, 1)
    image = _save(fig, folder, "flip_rates.png")
    plt.close("all")
    skipped = "".join(f"<p>Skipped {html.escape(n)}: {html.escape(w)}.</p>" for n, w in result["skipped"].items())
    intro = (f"{result['n']} labelled texts, seed {result['seed']}." +
             (f" Positive label {html.escape(result['positive_label'])}; TPR thresholds set on the clean negatives."
              if detector else ""))
    return write_page(folder, title, intro, _table(rows, header) + skipped,
                      [("Share of decisions each perturbation flips", image)])

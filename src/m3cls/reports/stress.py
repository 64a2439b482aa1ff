"""The report page of ``m3cls stress --report``: the figures per perturbation, the task's own scores beside the
clean ones, and a plot of the share of answers each perturbation moved (flip rate; regression: shift share).

The detector's columns appear only for a single-label model scored with a positive label; the result says which
columns the task has (``change_keys``, ``metric_keys``), so this page asks nothing of the task itself.
"""

from __future__ import annotations

import html
import os

from .pages import _pyplot, _save, _table, write_page
from .slices import DETECTOR_HEADER, detector_cells

#: column heads and plot axes for the change keys
_TITLES = {"flip_rate": "flip rate", "shift_share": "shift share", "mean_abs_shift": "mean abs. shift"}
_AXES = {"flip_rate": "share of decisions flipped", "shift_share": "share of predictions moved past the tolerance"}


def write_stress_report(folder: str, result: dict, title: str = "m3cls stress") -> str:
    """``folder/index.html`` with the table and the plot of the first change key; returns its path."""
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    detector = result["positive_label"] is not None
    keys = [*result["change_keys"], *result["metric_keys"]]
    header = ["perturbation", "changed", *(_TITLES.get(k, k) for k in keys)] + (DETECTOR_HEADER if detector else [])
    rows = []
    for name, s in [("clean", {**result["clean"], "changed_share": 0.0, **{k: 0.0 for k in result["change_keys"]}}),
                    *result["perturbations"].items()]:
        rows.append([name, s["changed_share"], *(s[k] for k in keys)] + (detector_cells(s) if detector else []))
    plotted = result["change_keys"][0]
    names = list(result["perturbations"])
    fig, ax = plt.subplots(figsize=(6.5, max(2.2, 0.35 * len(names) + 1)))
    ax.barh(names, [result["perturbations"][n][plotted] for n in names], color="tab:red")
    ax.set_xlabel(_AXES.get(plotted, plotted))
    ax.set_xlim(0, 1)
    image = _save(fig, folder, f"{plotted}s.png")
    plt.close("all")
    skipped = "".join(f"<p>Skipped {html.escape(n)}: {html.escape(w)}.</p>" for n, w in result["skipped"].items())
    return write_page(folder, title, _intro(result), _table(rows, header) + skipped,
                      [(f"{_AXES.get(plotted, plotted).capitalize()}, per perturbation", image)])


def _intro(result: dict) -> str:
    intro = f"{result['n']} labelled texts, seed {result['seed']}; the clean row holds m3cls evaluate's figures."
    if result["positive_label"] is not None:
        intro += (f" Positive label {html.escape(result['positive_label'])}; TPR thresholds set on the clean "
                  f"negatives.")
    if "shift_tolerance" in result:
        intro += (f" A prediction counts as shifted when it moved by more than {result['shift_tolerance']:.4g} "
                  f"(a tenth of the training target's standard deviation).")
    return intro

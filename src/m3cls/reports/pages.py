"""An offline HTML report with PNG plots: training curves, confusion matrix, reliability, per-class F1, baseline.

Example::

    >>> from m3cls.reports.pages import write_report
    >>> write_report("runs/m3/report", evaluation, history=meta["history"])   # doctest: +SKIP
    'runs/m3/report/index.html'
"""

from __future__ import annotations

import html
import os
import textwrap

from ..errors import ConfigError

_BASELINE = "TF-IDF + logistic regression"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("the HTML report needs matplotlib; run: pip install matplotlib") from None
    matplotlib.use("Agg")
    # label names are data, not TeX: "$\\undefinedcmd$" must be drawn as typed, never parsed as math text
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(folder, name), dpi=100)
    fig.clf()
    return name


def curves(plt, folder: str, history: list[dict], key: str = "macro_f1", name: str = "macro-F1",
           bounded: bool = True) -> str | None:
    """Training loss and the validation score ``eval_{key}`` against the step (``bounded``: a score in [0, 1])."""
    losses = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    scores = [(e["step"], e[f"eval_{key}"]) for e in history if f"eval_{key}" in e and "step" in e]
    # a run shorter than logging_steps logs no loss: its mean training loss stands at its last step
    means = [] if losses else [(e["step"], e["train_loss"]) for e in history if "train_loss" in e and "step" in e]
    if not losses and not scores and not means:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if losses:
        ax.plot(*zip(*losses), label="training loss", color="tab:blue")
    if means:
        ax.plot(*zip(*means), "s", label="mean training loss of the run", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if scores:
        twin = ax.twinx()
        twin.plot(*zip(*scores), "o-", label=f"validation {name}", color="tab:orange")
        twin.set_ylabel(name)
        if bounded:
            twin.set_ylim(0, 1.02)
    fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.92), fontsize=8)
    return _save(fig, folder, "curves.png")


def _confusion(plt, folder: str, matrix: list[list[int]], names: list[str]) -> str:
    size = max(4, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    return _save(fig, folder, "confusion.png")


def _reliability(plt, folder: str, evaluation: dict) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
    for ax, key in zip(axes, ("before", "after")):
        part = evaluation[key]
        bins = [b for b in part["reliability"] if b["count"]]
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
        ax.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=1 / 15, align="edge",
               edgecolor="black", alpha=0.7, label="accuracy")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:red",
                label="mean confidence")
        ax.set_title(f"{key} calibration (T={part['temperature']:.2f}), ECE {part['ece']:.3f}")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    return _save(fig, folder, "reliability.png")


def _per_class(plt, folder: str, per_class: dict) -> str:
    names = list(per_class)
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(names) + 2), 3.5))
    ax.bar(names, [per_class[n]["f1"] for n in names], color="tab:green")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("F1")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, folder, "per_class_f1.png")


def model_row(method: str | None) -> str:
    """The model's name in a report's tables and legends: "this model (probe)"."""
    return f"this model ({method})" if method else "this model"


def baseline_row(baseline: dict, default: str) -> str:
    """The baseline's name in a report's tables and legends: its ``label`` (where it was scored), else ``default``."""
    return baseline.get("label") or default


def baseline_note(baseline: dict | None) -> str:
    """The sentence under the baseline's heading that says where it was fitted and scored, if it says."""
    return f"<p>{html.escape(baseline['note'])}</p>" if baseline and baseline.get("note") else ""


def _baseline(plt, folder: str, model: dict, baseline: dict, method: str | None) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    keys = ["accuracy", "macro_f1"]
    xs = range(len(keys))
    ax.bar([x - 0.2 for x in xs], [model[k] for k in keys], width=0.4, label=model_row(method))
    ax.bar([x + 0.2 for x in xs], [baseline[k] for k in keys], width=0.4,
           label=textwrap.fill(baseline_row(baseline, _BASELINE), 48))
    ax.set_xticks(list(xs), keys)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8)  # below the bars, which reach 1.0
    return _save(fig, folder, "baseline.png")


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(folder: str, evaluation: dict, history: list[dict] | None = None, baseline: dict | None = None,
                 title: str = "m3cls report", sections: list[tuple[str, str]] | None = None, extra=None,
                 method: str | None = None, warnings: list[str] | None = None) -> str:
    """Write ``index.html`` and its PNGs into ``folder``; returns the page's path.

    ``sections`` are extra (heading, HTML) parts placed after the summary: the ladder, cross-validation, the
    label audit (see :func:`ladder_section`, :func:`cv_section`, :func:`audit_section`). ``extra(plt, folder)``
    may add a section with figures (the decisions of :mod:`m3cls.reports.decisions`): it returns (figures as
    (caption, PNG name), HTML). ``method`` names how the model was made ("fine-tuned", "probe", "LoRA") in the
    baseline's table and plot; ``baseline`` may carry a ``label`` and a ``note`` saying where it was scored;
    ``warnings`` stand boxed under the title.
    """
    plt = _pyplot()
    os.makedirs(folder, exist_ok=True)
    after = evaluation["after"]
    names = list(after["per_class"])
    images = [("Training loss and validation macro-F1", curves(plt, folder, history or [])),
              ("Confusion matrix", _confusion(plt, folder, after["confusion_matrix"], names)),
              ("Reliability before and after calibration", _reliability(plt, folder, evaluation)),
              ("Per-class F1", _per_class(plt, folder, after["per_class"]))]
    if baseline:
        images.append((f"{model_row(method).capitalize()} against the baseline",
                       _baseline(plt, folder, after, baseline, method)))
    extra_figures, extra_html = extra(plt, folder) if extra else ([], "")
    images += extra_figures
    plt.close("all")
    summary = _table([[k, evaluation["before"][k], after[k]] for k in ("accuracy", "macro_f1", "log_loss", "ece")]
                     + [["temperature", 1.0, after["temperature"]]], ["metric", "before calibration",
                                                                     "after calibration"])
    per_class = _table([[n, s["precision"], s["recall"], s["f1"], s["support"]] for n, s in after["per_class"].items()],
                       ["label", "precision", "recall", "F1", "support"])
    base = _table([[model_row(method), after["accuracy"], after["macro_f1"]],
                   [baseline_row(baseline, _BASELINE), baseline["accuracy"], baseline["macro_f1"]]],
                  ["model", "accuracy", "macro-F1"]) + baseline_note(baseline) if baseline else ""
    content = (f"<h2>Summary</h2>{summary}"
               f"{''.join(f'<h2>{html.escape(h)}</h2>{part}' for h, part in sections or [])}"
               f"<h2>Per class</h2>{per_class}{'<h2>Baseline</h2>' + base if base else ''}"
               f"{'<h2>Decisions</h2>' + extra_html if extra_html else ''}")
    return write_page(folder, title, intro_line(evaluation["n"], method), content, images, warnings)


def intro_line(n: int, method: str | None, task: str | None = None) -> str:
    """The line under a report's title: how many texts were scored (of which task), and by what kind of model."""
    what = f"{n} labelled texts" + (f" ({html.escape(task)})" if task else "") + "."
    return what + (f" Model: {html.escape(method)}." if method else "")


def write_page(folder: str, title: str, intro: str, body: str, images: list[tuple[str, str | None]],
               warnings: list[str] | None = None) -> str:
    """``folder/index.html``: the title, an intro line, each warning in a box, ``body`` (HTML), then each
    (caption, PNG name) figure that was drawn; returns its path. The one page layout of every report."""
    figures = "".join(f"<figure><img src=\"{name}\" alt=\"{html.escape(caption)}\"><figcaption>"
                      f"{html.escape(caption)}</figcaption></figure>" for caption, name in images if name)
    boxes = "".join(f"<p class=\"warning\"><strong>Warning:</strong> {html.escape(w)}</p>" for w in warnings or [])
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f3f3f3}"
            "figure{margin:1.5em 0}img{max-width:100%}.warning{background:#fff3cd;border:1px solid #d9a400;"
            "padding:8px 12px}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{intro}</p>{boxes}{body}{figures}</body></html>")
    path = os.path.join(folder, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def ladder_section(ladder: list[dict]) -> tuple[str, str]:
    """Every approach tried on the same validation split: score and wall time, cheapest first."""
    rows = [[r["name"], r["accuracy"], r["macro_f1"], f"{r['seconds']:.1f}", r.get("note", "")] for r in ladder]
    note = ("<p>All rungs are scored on the same validation split. Wall time covers fitting (and, for the "
            "probe, embedding; cached embeddings cost almost nothing).</p>")
    return "Ladder: is fine-tuning worth its cost?", note + _table(rows, ["approach", "accuracy", "macro-F1",
                                                                          "wall time (s)", "note"])


def cv_section(summary: dict) -> tuple[str, str]:
    """Per-fold scores of a cross-validation and their mean and spread."""
    rows = [[f["fold"], f["records"], f["accuracy"], f["macro_f1"]] for f in summary["folds"]]
    rows += [["mean ± std", "", f"{summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f}",
              f"{summary['macro_f1_mean']:.4f} ± {summary['macro_f1_std']:.4f}"]]
    text = (f"<p>{summary['k']} folds ({summary['split']}), method {html.escape(summary['method'])}; the scores "
            f"above this section are those of the out-of-fold predictions of every text.</p>")
    return "Cross-validation", text + _table(rows, ["fold", "held-out records", "accuracy", "macro-F1"])


def audit_section(summary: dict, suspects: list[dict], top: int = 25) -> tuple[str, str]:
    """The label audit: what was checked, how many suspects of each kind, and the most suspect records."""
    counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary["counts"].items())
    text = (f"<p>{summary['records']} records; {len(suspects)} suspects ({html.escape(counts)}). Label issues "
            f"come from out-of-fold probabilities ({html.escape(summary['method'])}); near-duplicates are pairs "
            f"with embedding cosine &ge; {summary['near_duplicate_cosine']} and different labels. Score: 1 minus "
            f"the out-of-fold probability of the given label; most suspect first. Index: the record's position "
            f"in the input, from 0.</p>")
    rows = [[s["index"], s["given_label"], s["suggested_label"], s["score"], ", ".join(s["reasons"]),
             s.get("text", "")] for s in suspects[:top]]
    return "Label audit", text + _table(rows, ["index", "given", "suggested", "score", "why", "text"])

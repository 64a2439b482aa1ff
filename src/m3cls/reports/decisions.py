"""The decision part of the HTML report: ROC and precision-recall curves with the chosen operating point and its
95% interval, and the risk-coverage curve of abstention.

``write_report(..., extra=decision_section(...))`` puts these figures and a table into the page.
"""

from __future__ import annotations

import html
import os

import numpy as np

from ..metrics.decisions import UNCERTAIN


def _curve(scores: np.ndarray, y: np.ndarray):
    """False-positive rate, recall and precision at every distinct threshold, highest first."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], y[order] == 1
    last = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(hits)[last]
    fp = np.cumsum(~hits)[last]
    n_pos, n_neg = max(1, hits.sum()), max(1, (~hits).sum())
    return fp / n_neg, tp / n_pos, tp / np.maximum(1, tp + fp)


def _roc_pr(plt, folder: str, scores: np.ndarray, y: np.ndarray, point: dict, positive: str) -> str:
    fpr, recall, precision = _curve(scores, y)
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 4))
    roc.plot(np.r_[0, fpr], np.r_[0, recall], color="tab:blue")
    chance = np.linspace(0, 1, 201)
    roc.plot(chance, chance, "--", color="grey")
    (lo, hi), (rlo, rhi) = point["intervals"]["fpr"], point["intervals"]["recall"]
    roc.errorbar([point["fpr"]], [point["recall"]], xerr=[[point["fpr"] - lo], [hi - point["fpr"]]],
                 yerr=[[point["recall"] - rlo], [rhi - point["recall"]]], fmt="o", color="tab:red",
                 capsize=4, label="chosen threshold (95% CI)")
    roc.set_xscale("symlog", linthresh=0.01)
    roc.set_xlim(0, 1)
    roc.set_xlabel("false-positive rate (symlog)")
    roc.set_ylabel(f"recall of {positive}")
    roc.set_title("ROC")
    roc.legend(loc="lower right", fontsize=8)
    pr.plot(recall, precision, color="tab:green")
    plo, phi = point["intervals"]["precision"]
    pr.errorbar([point["recall"]], [point["precision"]], xerr=[[point["recall"] - rlo], [rhi - point["recall"]]],
                yerr=[[point["precision"] - plo], [phi - point["precision"]]], fmt="o", color="tab:red", capsize=4)
    pr.set_xlabel(f"recall of {positive}")
    pr.set_ylabel("precision")
    pr.set_ylim(0, 1.02)
    pr.set_title("Precision-recall")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "roc_pr.png"), dpi=100)
    fig.clf()
    return "roc_pr.png"


def _risk_coverage(plt, folder: str, points: list[dict], chosen: dict | None) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot([p["coverage"] for p in points], [p["accuracy"] for p in points], color="tab:purple")
    if chosen and chosen.get("accuracy_covered") is not None:
        ax.plot([chosen["coverage"]], [chosen["accuracy_covered"]], "o", color="tab:red", label="saved rule")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel("coverage (share of texts decided)")
    ax.set_ylabel("accuracy on the decided texts")
    ax.set_xlim(0, 1.02)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "risk_coverage.png"), dpi=100)
    fig.clf()
    return "risk_coverage.png"


def decision_section(plt, folder: str, summary: dict, points: list[dict], scores: np.ndarray | None = None,
                     y: np.ndarray | None = None) -> tuple[list[tuple[str, str]], str]:
    """(figures, HTML) for the report: the operating point when the rule has one, and risk-coverage."""
    rule, figures, rows = summary["rule"], [], []
    point = summary.get("operating_point")
    if point is not None and scores is not None:
        figures.append((f"ROC and precision-recall for {rule['positive_label']} against the rest, with the "
                        f"chosen threshold {rule['threshold']:.4f} and the 95% Clopper-Pearson interval of its "
                        f"rates on this data", _roc_pr(plt, folder, scores, y, point, rule["positive_label"])))
        for metric in ("fpr", "recall", "precision"):
            lo, hi = point["intervals"][metric]
            rows.append(f"<tr><td>{metric}</td><td>{point[metric]:.4f}</td><td>{lo:.4f} to {hi:.4f}</td></tr>")
    figures.append(("Risk-coverage: accuracy on the texts kept when abstaining below each confidence",
                    _risk_coverage(plt, folder, points, summary if rule.get("abstain_below") else None)))
    target = rule.get("target") or {}
    text = (f"<p>Rule: {html.escape(_describe(rule))}. Texts decided: {summary['coverage']:.1%} "
            f"({summary['covered']}); accuracy on them: {_pct(summary['accuracy_covered'])}; others are "
            f"'{UNCERTAIN}'.</p>")
    if target:
        text += (f"<p>Chosen for {target['metric']} {'&le;' if target['metric'] == 'fpr' else '&ge;'} "
                 f"{target['value']:g} on {html.escape(str(target.get('fitted_on')))}.</p>")
    if rows:
        text += ("<table><tr><th>rate on this data</th><th>value</th><th>95% interval (Clopper-Pearson)</th></tr>"
                 + "".join(rows) + "</table>")
    return figures, text


def _describe(rule: dict) -> str:
    parts = []
    if rule.get("positive_label") is not None:
        parts.append(f"{rule['positive_label']} when its probability is at least {rule['threshold']:.4f}")
    if rule.get("abstain_below") is not None:
        parts.append(f"uncertain when the chosen label's probability is under {rule['abstain_below']:g}")
    parts.append(f"at temperature {rule['temperature']:.4g}, windows aggregated by {rule['aggregate']}")
    return "; ".join(parts)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"

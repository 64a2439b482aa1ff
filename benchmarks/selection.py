"""A simulated labelling loop on BBC News: how many labels random, uncertainty and hybrid selection need.

The demo corpus (2225 articles, 5 topics) is embedded once with the bundled MiniLM (``max_length`` 128, through
the embedding cache). A fixed stratified quarter is the test set; the rest is the pool, whose labels are hidden
until a strategy asks for them. For each seed: 20 pool texts drawn at random are labelled; then, each round, the
probe (logistic regression on the embeddings, as ``m3cls select --model_name_or_path`` fits it) is refitted on
the labelled texts, scored on the test set (macro-F1), and the strategy picks the next 20 texts with the same
code ``m3cls select`` runs (:func:`m3cls.evaluation.selection.rank`, the labelled texts as centers). The full-data
figure is the probe fitted on the whole pool.

Reported per strategy: the macro-F1 learning curve (mean over seeds, plotted), the area under it (mean macro-F1
over the label counts, per seed), and the labels needed to reach 95 % of the full-data macro-F1 (per seed; the
first label count at or above it; "> max" when never reached).

    python benchmarks/selection.py [--seeds 5] [--max_labels 500] [--plot docs/benchmarks/select-curves.png]
        [--json runs/select.json]

(Named selection.py, not select.py: a script folder holding select.py shadows the standard library module that
subprocess imports.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

from m3cls.data.demo import bbc_news
from m3cls.evaluation.selection import rank
from m3cls.evaluation.selection_models import fit_and_score
from m3cls.metrics.classification import classification_report
from m3cls.tasks import get_task
from m3cls.tasks.labels import LabelSet

STRATEGIES = ("random", "uncertainty", "hybrid")
SINGLE_LABEL = get_task("single_label")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--start", type=int, default=20)
    p.add_argument("--round", type=int, default=20)
    p.add_argument("--max_labels", type=int, default=500)
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--test_share", type=float, default=0.25)
    p.add_argument("--plot", default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    texts, labels = zip(*bbc_news())
    names = LabelSet.discover(list(labels), "BBC News")
    y = np.asarray(names.encode(list(labels), "BBC News"))
    x = embed(list(texts), a.max_length)
    pool, test = split(y, a.test_share)
    full = macro_f1(x[pool], y[pool], names, x[test], y[test])
    print(f"texts {len(texts)}, pool {len(pool)}, test {len(test)}, full-data probe macro-F1 {full:.4f}",
          file=sys.stderr)
    counts = list(range(a.start, a.max_labels + 1, a.round))
    curves = {s: [] for s in STRATEGIES}
    for seed in range(a.seeds):
        for strategy in STRATEGIES:
            started = time.perf_counter()
            curves[strategy].append(loop(x, y, names, pool, test, strategy, seed, counts, a.round))
            print(f"seed {seed} {strategy}: final macro-F1 {curves[strategy][-1][-1]:.4f} "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    result = summarise(curves, counts, full, a)
    if a.plot:
        plot(curves, counts, full, a.plot)
    text = json.dumps(result, indent=1)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text)
    print(text)
    return 0


def embed(texts: list[str], max_length: int) -> np.ndarray:
    from m3cls.probe.cache import default_cache_dir
    from m3cls.probe.embeddings import Embedder

    return Embedder("bundled", max_length=max_length, cache_dir=default_cache_dir()).embed(texts)


def split(y: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """A fixed stratified test share (seed 0); the rest is the pool."""
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: round(share * (y == c).sum())]
                           for c in np.unique(y)])
    return np.setdiff1d(np.arange(len(y)), test), np.sort(test)


def macro_f1(x_train, y_train, names, x_test, y_test) -> float:
    probabilities = fit_and_score(SINGLE_LABEL, x_train, [names.names[i] for i in y_train], names, x_test)
    return classification_report(y_test, probabilities.argmax(axis=1), names.names)["macro_f1"]


def loop(x, y, names, pool, test, strategy, seed, counts, step) -> list[float]:
    """Macro-F1 on the test set at each label count for one strategy and seed."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(pool, counts[0], replace=False))
    scores = []
    for count in counts:
        assert len(labelled) == count
        unlabelled = np.setdiff1d(pool, labelled)
        train_labels = [names.names[i] for i in y[labelled]]
        probabilities = fit_and_score(SINGLE_LABEL, x[labelled], train_labels, names,
                                      np.vstack([x[unlabelled], x[test]]))
        scores.append(classification_report(y[test], probabilities[len(unlabelled):].argmax(axis=1),
                                            names.names)["macro_f1"])
        if count == counts[-1]:
            break
        chosen = rank(probabilities[: len(unlabelled)], x[unlabelled], strategy, step, centers=x[labelled],
                      seed=seed * 1000 + count)
        labelled += [int(unlabelled[c.index]) for c in chosen]
    return scores


def labels_to_reach(curve: list[float], counts: list[int], target: float) -> int | None:
    return next((n for n, f in zip(counts, curve) if f >= target), None)


def summarise(curves: dict, counts: list[int], full: float, a) -> dict:
    target = 0.95 * full
    out = {"full_data_macro_f1": round(full, 4), "target_macro_f1": round(target, 4), "label_counts": counts,
           "seeds": a.seeds, "max_length": a.max_length, "strategies": {}}
    for s, runs in curves.items():
        reach = [labels_to_reach(c, counts, target) for c in runs]
        out["strategies"][s] = {
            "mean_curve": [round(float(v), 4) for v in np.mean(runs, axis=0)],
            "curves": [[round(float(v), 4) for v in c] for c in runs],
            "area_per_seed": [round(float(np.mean(c)), 4) for c in runs],
            "labels_to_95_per_seed": reach,
            "labels_to_95_median": statistics.median([r if r is not None else counts[-1] + a.round for r in reach])}
    hybrid, random_ = out["strategies"]["hybrid"], out["strategies"]["random"]
    wins = sum(h > r for h, r in zip(hybrid["area_per_seed"], random_["area_per_seed"]))
    out["targets"] = {"hybrid_area_beats_random_seeds": f"{wins} of {a.seeds} (target: at least 4 of 5)",
                      "hybrid_labels_over_random_labels": round(hybrid["labels_to_95_median"]
                                                                / random_["labels_to_95_median"], 3),
                      "target_ratio": 0.6}
    return out


def plot(curves: dict, counts: list[int], full: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for s, runs in curves.items():
        runs = np.asarray(runs)
        mean = runs.mean(axis=0)
        ax.plot(counts, mean, label=s)
        ax.fill_between(counts, runs.min(axis=0), runs.max(axis=0), alpha=0.15)
    ax.axhline(0.95 * full, color="grey", linestyle="--", linewidth=1, label="95 % of full-data macro-F1")
    ax.set_xlabel("labelled texts")
    ax.set_ylabel("test macro-F1")
    ax.set_title("BBC News, MiniLM probe (mean; band: min to max over seeds)", fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())

"""Multi-label and regression on BBC News with the bundled MiniLM, against TF-IDF baselines, on held-out texts.

The data: BBC News (``m3cls.data.demo.bbc_news``) without duplicate articles, split 80/20 into a training and a test
pool of articles, so no article is in both. Each text joins the first ``--words`` words of 1 to 3 articles
drawn from one pool (1, 2 or 3 with equal chance), so the whole text fits in ``--max_length`` tokens.

- multi-label: the label is the set of the joined articles' topics (two articles of one topic give one label);
- regression: the target is how many different topics the text covers (1 to 3), a property of the text the
  model has to read the topics to count; the number of articles joined would be a weaker test, since every
  article adds the same number of words and the length gives it away.

Both models train with ``m3cls train`` (10% of the training texts held out for validation, where multi-label
thresholds and the temperature are tuned) and are scored with ``m3cls evaluate`` on the test texts. The
baselines use the same TF-IDF features as m3cls' own: one-vs-rest logistic regression at probability 0.5, and
again with per-label thresholds tuned on 10% of the training texts; and ridge regression (strength chosen by
cross-validation on train). Everything is printed and written to ``WORKDIR/results.json``.

    python benchmarks/tasks.py --workdir runs/tasks [--epochs 2] [--max_length 128] [--words 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

import numpy as np

from m3cls.data.demo import bbc_news
from m3cls.metrics.multilabel import decisions, multilabel_report, tune_thresholds
from m3cls.tasks.baseline import multilabel_baseline, regression_baseline, tfidf_features
from m3cls.tasks.labels import LabelSet
from m3cls.tasks.targets import multi_hot


def article_pools(seed: int = 0) -> tuple[list, list]:
    """Unique BBC articles, shuffled and split 80/20 into a training and a test pool."""
    seen, pairs = set(), []
    for text, topic in bbc_news():
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            pairs.append((text, topic))
    random.Random(seed).shuffle(pairs)
    cut = round(len(pairs) * 0.8)
    return pairs[:cut], pairs[cut:]


def joined_texts(pool: list, n: int, words: int, seed: int) -> list[tuple[str, list[str]]]:
    """n different texts, each the leads of 1 to 3 different articles of the pool, with their set of topics."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        articles = rng.sample(pool, rng.choice([1, 2, 3]))
        text = " ".join(" ".join(a.split()[:words]) for a, _ in articles)
        if text not in seen:
            seen.add(text)
            out.append((text, sorted({topic for _, topic in articles})))
    return out


def write(path: str, rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False)
    return path


def m3cls(*args: str) -> None:
    print("$ m3cls " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "m3cls", *args], check=True, stdout=subprocess.DEVNULL)


def train_and_evaluate(workdir: str, name: str, train: str, test: str, a, *flags: str) -> tuple[dict, float]:
    model, out = os.path.join(workdir, f"model_{name}"), os.path.join(workdir, f"eval_{name}.json")
    start = time.perf_counter()
    if not os.path.isfile(os.path.join(model, "m3cls.json")):
        m3cls("train", "--model_name_or_path", "bundled", "--data_path", train, "--output_dir", model,
              "--max_length", str(a.max_length), "--num_train_epochs", a.epochs, "--learning_rate", a.lr,
              "--overwrite_output_dir", "--save_total_limit", "1", "--seed", "1", *flags)
    seconds = time.perf_counter() - start
    m3cls("evaluate", "--model_path", model, "--data_path", test, "--output", out)
    return json.load(open(out))["after"], seconds


def tuned_ovr_baseline(train: list, test: list, names: tuple[str, ...]) -> dict:
    """One-vs-rest logistic regression fitted on 90% of train, thresholds tuned on the other 10%, as m3cls does."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    labels = LabelSet(names)
    cut = round(len(train) * 0.9)
    fit, tune = train[:cut], train[cut:]
    model = make_pipeline(tfidf_features(), OneVsRestClassifier(LogisticRegression(max_iter=2000, C=10.0)))
    model.fit([t for t, _ in fit], multi_hot([tuple(y) for _, y in fit], labels))
    thresholds = tune_thresholds(model.predict_proba([t for t, _ in tune]),
                                 multi_hot([tuple(y) for _, y in tune], labels), names)
    predicted = decisions(model.predict_proba([t for t, _ in test]), names, thresholds)
    return multilabel_report(multi_hot([tuple(y) for _, y in test], labels), predicted, names, thresholds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/tasks")
    p.add_argument("--epochs", default="2")
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--words", type=int, default=30, help="words kept from the start of each joined article")
    p.add_argument("--n_train", type=int, default=1600)
    p.add_argument("--n_test", type=int, default=500)
    p.add_argument("--lr", default="1e-4")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    train_pool, test_pool = article_pools()
    train, test = joined_texts(train_pool, a.n_train, a.words, 1), joined_texts(test_pool, a.n_test, a.words, 2)
    names = tuple(sorted({topic for _, topic in train_pool}))
    paths = {}
    for task, target in (("multi", lambda y: y), ("regression", len)):
        for part, rows in (("train", train), ("test", test)):
            paths[task, part] = write(os.path.join(a.workdir, f"{task}_{part}.json"),
                                      [{"text": t, "label": target(y)} for t, y in rows])
    model_ml, seconds_ml = train_and_evaluate(a.workdir, "multi", paths["multi", "train"], paths["multi", "test"], a)
    model_rg, seconds_rg = train_and_evaluate(a.workdir, "regression", paths["regression", "train"],
                                              paths["regression", "test"], a, "--task", "regression")
    labels = LabelSet(names)
    texts = ([t for t, _ in train], [t for t, _ in test])
    ovr = multilabel_baseline(*texts[:1], multi_hot([tuple(y) for _, y in train], labels), texts[1],
                              multi_hot([tuple(y) for _, y in test], labels), names)
    ovr_tuned = tuned_ovr_baseline(train, test, names)
    ridge = regression_baseline(texts[0], [len(y) for _, y in train], texts[1], [len(y) for _, y in test])
    mean_rmse = float(np.std([len(y) for _, y in test]))
    results = {"settings": vars(a), "train_texts": len(train), "test_texts": len(test),
               "multi_label": {"model": model_ml, "train_seconds": seconds_ml, "tfidf_ovr": ovr,
                               "tfidf_ovr_tuned": ovr_tuned},
               "regression": {"model": model_rg, "train_seconds": seconds_rg, "tfidf_ridge": ridge,
                              "predict_the_mean_rmse": mean_rmse}}
    with open(os.path.join(a.workdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nBBC News, joined leads of {a.words} words from 1-3 articles; {len(train)} training texts (10% held "
          f"out for validation), {len(test)} test texts from unseen articles; bundled MiniLM, max_length "
          f"{a.max_length}, {a.epochs} epochs at learning rate {a.lr}")
    print(f"{'multi-label (held-out test)':44}{'micro-F1':>10}{'macro-F1':>10}{'samples-F1':>11}{'subset acc':>11}")
    for name, r in (("fine-tuned MiniLM (tuned thresholds)", model_ml), ("TF-IDF + one-vs-rest LR at 0.5", ovr),
                    ("TF-IDF + one-vs-rest LR, tuned thresholds", ovr_tuned)):
        print(f"{name:44}{r['micro_f1']:>10.4f}{r['macro_f1']:>10.4f}{r['samples_f1']:>11.4f}"
              f"{r['subset_accuracy']:>11.4f}")
    print(f"{'regression: topics per text (held-out test)':44}{'RMSE':>10}{'MAE':>10}{'R2':>11}{'Spearman':>11}")
    for name, r in (("fine-tuned MiniLM", model_rg), ("TF-IDF + ridge", ridge)):
        print(f"{name:44}{r['rmse']:>10.4f}{r['mae']:>10.4f}{r['r2']:>11.4f}{r['spearman']:>11.4f}")
    print(f"{'predicting the mean':44}{mean_rmse:>10.4f}")
    print(f"training took {seconds_ml:.0f} s (multi-label) and {seconds_rg:.0f} s (regression) on this machine")


if __name__ == "__main__":
    main()

"""Measure, on BBC News with the bundled MiniLM, what issue 13 asks to report:

- operating points: the FPR that ``calibrate --target_fpr T --positive_label business`` achieves on held-out
  texts it never saw, for T = 0.05 and 0.01 (one class against the rest), with the 95% Clopper-Pearson interval;
- chunk training (``train --long_text chunks``) against head truncation at a small max_length, per document;
- the time ``predict --explain`` adds per text.

Everything but the timing runs through the ``m3cls`` CLI. BBC News duplicates are removed, then the articles are
split (stratified, seeded) into train 40%, calibration 30% and test 30%.

    python benchmarks/decisions.py --workdir runs/decisions [--part all|fpr|chunks|explain]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict

from m3cls.data.demo import bbc_news, to_messages

SHARES = {"train": 0.4, "calibration": 0.3, "test": 0.3}


def split(workdir: str, seed: int = 0) -> dict[str, str]:
    seen, by_label = set(), defaultdict(list)
    for text, label in bbc_news():
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            by_label[label].append((text, label))
    rng, parts = random.Random(seed), {name: [] for name in SHARES}
    for label in sorted(by_label):
        items = by_label[label]
        rng.shuffle(items)
        cut1 = round(len(items) * SHARES["train"])
        cut2 = cut1 + round(len(items) * SHARES["calibration"])
        parts["train"] += items[:cut1]
        parts["calibration"] += items[cut1:cut2]
        parts["test"] += items[cut2:]
    os.makedirs(workdir, exist_ok=True)
    paths = {}
    for name, pairs in parts.items():
        rng.shuffle(pairs)
        paths[name] = os.path.join(workdir, f"{name}.json")
        with open(paths[name], "w", encoding="utf-8") as f:
            json.dump([to_messages(t, y) for t, y in pairs], f, ensure_ascii=False)
    return paths


def m3cls(*args: str) -> float:
    print("$ m3cls " + " ".join(args), flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "m3cls", *args], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "M3CLS_LOG_LEVEL": "WARNING"})
    return time.perf_counter() - start


def train(data: str, out: str, max_length: str, epochs: str, *extra: str) -> float:
    if os.path.isfile(os.path.join(out, "m3cls.json")):
        return float("nan")
    return m3cls("train", "--model_name_or_path", "bundled", "--data_path", data, "--output_dir", out,
                 "--max_length", max_length, "--num_train_epochs", epochs, "--learning_rate", "1e-4",
                 "--overwrite_output_dir", "--save_total_limit", "1", "--no_baseline", "--no_report", "--no_ladder",
                 *extra)


def fpr_part(a, paths: dict[str, str]) -> None:
    model = os.path.join(a.workdir, "model")
    seconds = train(paths["train"], model, a.max_length, a.epochs)
    print(f"\ntrained on {paths['train']} in {seconds:.0f} s; positive label {a.positive}, the other 4 topics "
          f"are the negatives")
    print(f"{'target FPR':>10} {'threshold':>10} {'FPR on calibration':>19} {'FPR on test (95% CI)':>28} "
          f"{'recall on test':>15}")
    for target in ("0.05", "0.01"):
        copy = os.path.join(a.workdir, f"model_fpr{target}")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(model, copy)
        m3cls("calibrate", "--model_path", copy, "--data_path", paths["calibration"], "--target_fpr", target,
              "--positive_label", a.positive)
        out = os.path.join(a.workdir, f"eval_fpr{target}.json")
        m3cls("evaluate", "--model_path", copy, "--data_path", paths["test"], "--output", out)
        rule = json.load(open(os.path.join(copy, "m3cls.json")))["decision"]
        point = json.load(open(out))["decision"]["operating_point"]
        lo, hi = point["intervals"]["fpr"]
        print(f"{target:>10} {rule['threshold']:>10.4f} {rule['target']['achieved']:>19.4f} "
              f"{point['fpr']:>10.4f} [{lo:.4f}, {hi:.4f}] ({point['fp']}/{point['negatives']}) "
              f"{point['recall']:>8.4f}", flush=True)


def _steps(model: str) -> int:
    return json.load(open(os.path.join(model, "m3cls.json")))["history"][-1]["step"]


def chunks_part(a, paths: dict[str, str]) -> None:
    """Head truncation against chunk training at a small max_length, on a subset of the training articles.
    Chunk training takes more steps per epoch (one per window), so head truncation also runs with as many
    epochs as it takes to match the steps."""
    records = json.load(open(paths["train"]))[: a.chunk_docs]
    subset = os.path.join(a.workdir, f"train_{a.chunk_docs}.json")
    with open(subset, "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False)
    length, models, seconds = a.chunk_length, {}, {}
    for name, extra in (("head", ()), ("chunks", ("--long_text", "chunks", "--stride", a.stride))):
        models[name] = os.path.join(a.workdir, f"{name}{length}")
        seconds[name] = train(subset, models[name], length, a.epochs, *extra)
    epochs = max(1, round(_steps(models["chunks"]) / _steps(models["head"]) * float(a.epochs)))
    if not a.skip_matched:
        models["head_matched"] = os.path.join(a.workdir, f"head{length}_{epochs}ep")
        seconds["head_matched"] = train(subset, models["head_matched"], length, str(epochs))
    test = os.path.join(a.workdir, f"test_{a.chunk_test_docs}.json")
    with open(test, "w", encoding="utf-8") as f:
        json.dump(json.load(open(paths["test"]))[: a.chunk_test_docs], f, ensure_ascii=False)
    rows = []
    matched = models.get("head_matched", models["head"])
    for name, model, mode in ((f"head truncation, {a.epochs} epoch(s)", models["head"], "truncate"),
                              (f"head truncation, {epochs} epochs (same steps)", models.get("head_matched"), "truncate"),
                              (f"head truncation ({_steps(matched)} steps), predict with chunks", matched, "chunks"),
                              (f"chunk training, {a.epochs} epoch(s)", models["chunks"], "chunks")):
        if model is None:
            continue
        out = os.path.join(a.workdir, f"eval_{os.path.basename(model)}_{mode}.json")
        m3cls("evaluate", "--model_path", model, "--data_path", test, "--long_text", mode,
              "--stride", a.stride, "--output", out)
        r = json.load(open(out))["after"]
        rows.append((name, _steps(model), r["accuracy"], r["macro_f1"]))
    print(f"\n{len(records)} training articles, max_length {length}, stride {a.stride}; training took "
          + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + f"; test: the first {a.chunk_test_docs} of {paths['test']}")
    print(f"{'':46}{'steps':>7}{'accuracy':>10}{'macro-F1':>10}")
    for name, steps, acc, f1 in rows:
        print(f"{name:46}{steps:>7}{acc:>10.4f}{f1:>10.4f}", flush=True)


TIMING = """
import json, sys, time
from m3cls import Classifier
texts = [r["messages"][1]["content"] for r in json.load(open(sys.argv[1]))][: int(sys.argv[2])]
clf = Classifier.from_pretrained(sys.argv[3])
clf.predict(texts[:2], explain=sys.argv[4] == "1")
start = time.perf_counter()
result = clf.predict(texts, explain=sys.argv[4] == "1")
seconds = time.perf_counter() - start
words = sum(len(p.attributions) for p in result) if sys.argv[4] == "1" else 0
print(json.dumps({"seconds": seconds, "words": words}))
"""


def explain_part(a, paths: dict[str, str]) -> None:
    model = os.path.join(a.workdir, "model")
    train(paths["train"], model, a.max_length, a.epochs)
    runs = {}
    for flag in ("0", "1"):  # each side in a fresh process, timed the same way
        out = subprocess.run([sys.executable, "-c", TIMING, paths["test"], str(a.explain_texts), model, flag],
                             check=True, capture_output=True, text=True, env={**os.environ,
                                                                               "M3CLS_LOG_LEVEL": "WARNING"})
        runs[flag] = json.loads(out.stdout.strip().splitlines()[-1])
    n = a.explain_texts
    plain, explained = runs["0"]["seconds"] / n, runs["1"]["seconds"] / n
    print(f"\n--explain on {n} test articles at max_length {a.max_length} (bundled MiniLM, default precision): "
          f"{plain * 1000:.0f} ms per text without, {explained:.2f} s with ({runs['1']['words'] / n:.0f} scored "
          f"words per text, so about {runs['1']['words'] / n + 1:.0f} model passes); +{explained - plain:.2f} s "
          f"per text", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/decisions")
    p.add_argument("--part", default="all", choices=("all", "fpr", "chunks", "explain"))
    p.add_argument("--positive", default="business")
    p.add_argument("--max_length", default="128")
    p.add_argument("--epochs", default="1")
    p.add_argument("--chunk_length", default="64", help="the small max_length for chunk training vs head")
    p.add_argument("--stride", default="16")
    p.add_argument("--chunk_docs", type=int, default=200, help="training articles for the chunk comparison")
    p.add_argument("--chunk_test_docs", type=int, default=300, help="test articles for the chunk comparison")
    p.add_argument("--skip_matched", action="store_true",
                   help="skip the head-truncation run with as many steps as chunk training (a busy machine)")
    p.add_argument("--explain_texts", type=int, default=10)
    a = p.parse_args()
    paths = split(a.workdir)
    print("split:", {k: len(json.load(open(v))) for k, v in paths.items()})
    if a.part in ("all", "fpr"):
        fpr_part(a, paths)
    if a.part in ("all", "chunks"):
        chunks_part(a, paths)
    if a.part in ("all", "explain"):
        explain_part(a, paths)


if __name__ == "__main__":
    main()

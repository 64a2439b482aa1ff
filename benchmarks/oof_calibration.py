"""Temperature and operating point fitted on a validation split against fitted on cv's out-of-fold probabilities.

With few training texts, a 10% validation split is tiny: 30 texts of 300. ``m3cls calibrate --from_cv`` fits on
the out-of-fold probabilities of every training text instead. This script measures, on the demo corpus (BBC
News, 5 topics; the positive label of the operating point is ``business``, one topic against the rest):

- for N training texts (a seeded stratified sample), split 90/10 into train and validation;
- ``train --method probe`` (bundled MiniLM) with ``--validation_path``: the temperature is fitted on validation;
  ``calibrate --data_path VALIDATION --positive_label business --target_fpr X``: the threshold too;
- ``cv`` (5 folds) on all N texts, then ``calibrate --from_cv`` on a copy of the same model: temperature and
  threshold from the N out-of-fold probabilities;
- ``evaluate`` of both on every text not among the N: held-out ECE (at the model's temperature) and the
  held-out FPR of the saved rule.

A target the data cannot show (m3cls refuses an FPR target when even 0 false positives would leave its 95%
interval above the target: 72 negatives for 5%, 368 for 1%) is reported as refused.

    flock /tmp/m3cls-heavy.lock python benchmarks/oof_calibration.py --workdir runs/oof --sizes 300,1000
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

from m3cls.data.demo import bbc_news

COMMON = ["--model_name_or_path", "bundled", "--max_length", "128", "--method", "probe", "--seed", "0"]
POSITIVE = "business"


def m3cls(*args: str) -> tuple[int, str]:
    """Run one m3cls command in a fresh process: (exit code, its stderr's last line)."""
    print("$ m3cls " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "m3cls", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode not in (0, 2):
        raise RuntimeError(done.stderr[-2000:])
    return done.returncode, last


def write(path: str, pairs) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": t, "label": y}) + "\n" for t, y in pairs)
    return path


def split(n: int, seed: int):
    """(train, validation, held-out) pairs: N texts stratified by topic, split 90/10; the rest held out."""
    rng = random.Random(seed)
    by_topic = defaultdict(list)
    for pair in bbc_news():
        by_topic[pair[1]].append(pair)
    pairs = [p for topic in sorted(by_topic) for p in by_topic[topic]]
    rng.shuffle(pairs)
    chosen, rest = pairs[:n], pairs[n:]
    cut = round(0.9 * n)
    return chosen[:cut], chosen[cut:], rest


def measure(workdir: str, n: int, targets: list[float], seed: int) -> dict:
    w = lambda name: os.path.join(workdir, f"n{n}", name)  # noqa: E731
    os.makedirs(w(""), exist_ok=True)
    train, val, held = split(n, seed)
    paths = {k: write(w(f"{k}.jsonl"), v) for k, v in (("train", train), ("val", val), ("all", train + val),
                                                         ("held", held))}
    cache = ["--cache_dir", os.path.join(workdir, "cache")]
    m3cls("train", "--data_path", paths["train"], "--validation_path", paths["val"], "--output_dir", w("val_fit"),
          *COMMON, *cache, "--no_baseline", "--no_report", "--overwrite_output_dir")
    m3cls("cv", "--data_path", paths["all"], "--output_dir", w("cv"), *COMMON, *cache, "--folds", "5", "--no_report",
          "--overwrite_output_dir")
    shutil.rmtree(w("oof_fit"), ignore_errors=True)
    shutil.copytree(w("val_fit"), w("oof_fit"))
    m3cls("calibrate", "--model_path", w("oof_fit"), "--from_cv", w("cv"))
    out = {"n": n, "validation_texts": len(val), "held_out_texts": len(held)}
    for name in ("val_fit", "oof_fit"):
        code, _ = m3cls("evaluate", "--model_path", w(name), "--data_path", paths["held"], "--output", w(f"{name}.json"))
        with open(w(f"{name}.json"), encoding="utf-8") as f:
            after = json.load(f)["after"]
        out[name] = {"temperature": after["temperature"], "held_out_ece": after["ece"]}
    for target in targets:
        for name, source in (("val_fit", ["--data_path", paths["val"]]), ("oof_fit", ["--from_cv", w("cv")])):
            model = w(f"{name}_{target}")
            shutil.rmtree(model, ignore_errors=True)
            shutil.copytree(w(name), model)
            code, line = m3cls("calibrate", "--model_path", model, *source, "--positive_label", POSITIVE,
                               "--target_fpr", str(target))
            if code:
                out[name][f"fpr_target_{target}"] = {"refused": line}
                continue
            m3cls("evaluate", "--model_path", model, "--data_path", paths["held"], "--output", w("e.json"))
            with open(w("e.json"), encoding="utf-8") as f:
                point = json.load(f)["decision"]["operating_point"]
            out[name][f"fpr_target_{target}"] = {"held_out_fpr": point["fpr"], "interval": point["intervals"]["fpr"],
                                                 "held_out_recall": point["recall"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/oof")
    p.add_argument("--sizes", default="300,1000")
    p.add_argument("--targets", default="0.01,0.05")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    results = [measure(a.workdir, int(n), [float(t) for t in a.targets.split(",")], a.seed)
               for n in a.sizes.split(",")]
    summary = {"date": started, "command": "python " + " ".join(sys.argv), "results": results}
    with open(os.path.join(a.workdir, "SUMMARY.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

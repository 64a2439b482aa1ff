"""Measure, on BBC News with the bundled MiniLM, what issue 4 asks to report:

- chunked prediction (``--long_text chunks``) against truncation at ``max_length 128`` on a held-out 20%;
- held-out ECE before and after the temperature fitted on the validation split during training;
- the TF-IDF + logistic regression baseline beside the fine-tuned model.

Everything runs through the ``m3cls`` CLI, as a user would. BBC News has duplicate articles; they are removed
before splitting so the held-out figures are honest.

    python benchmarks/bbc_trust.py --workdir runs/bbc-trust [--epochs 2] [--max_length 128]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict

from m3cls.data.demo import bbc_news, to_messages


def split_bbc(workdir: str, seed: int = 0) -> tuple[str, str, int]:
    seen, pairs = set(), []
    for text, label in bbc_news():
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            pairs.append((text, label))
    by_label = defaultdict(list)
    for pair in pairs:
        by_label[pair[1]].append(pair)
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_label):
        items = by_label[label]
        rng.shuffle(items)
        cut = round(len(items) * 0.2)
        test += items[:cut]
        train += items[cut:]
    os.makedirs(workdir, exist_ok=True)
    paths = []
    for name, part in (("train.json", train), ("test.json", test)):
        path = os.path.join(workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump([to_messages(t, y) for t, y in part], f, ensure_ascii=False)
        paths.append(path)
    return paths[0], paths[1], len(pairs)


def calibrate_on_held_out(workdir: str, model: str, test: str) -> None:
    """The careful protocol: refit T with `m3cls calibrate` on half of the held-out texts, measure on the other."""
    import shutil

    records = json.load(open(test))
    halves = {"calibration": records[0::2], "evaluation": records[1::2]}
    paths = {}
    for name, part in halves.items():
        paths[name] = os.path.join(workdir, f"heldout_{name}.json")
        with open(paths[name], "w", encoding="utf-8") as f:
            json.dump(part, f, ensure_ascii=False)
    copy = os.path.join(workdir, "model_recalibrated")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model, copy)
    m3cls("calibrate", "--model_path", copy, "--data_path", paths["calibration"])
    out = os.path.join(workdir, "eval_recalibrated.json")
    m3cls("evaluate", "--model_path", copy, "--data_path", paths["evaluation"], "--output", out)
    r = json.load(open(out))
    print(f"refit with 'm3cls calibrate' on {len(halves['calibration'])} held-out texts, measured on the other "
          f"{r['n']}: T={r['after']['temperature']:.3f}, ECE {r['before']['ece']:.4f} -> {r['after']['ece']:.4f}")


def m3cls(*args: str) -> None:
    cmd = [sys.executable, "-m", "m3cls", *args]
    print("$ m3cls " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/bbc-trust")
    p.add_argument("--epochs", default="2")
    p.add_argument("--max_length", default="128")
    p.add_argument("--stride", default="32")
    p.add_argument("--lr", default="1e-4")
    p.add_argument("--extra", default="", help="more 'm3cls train' flags, e.g. '--precision fp32 "
                                                "--attention_dropout model' for the accuracy reference run")
    a = p.parse_args()
    train, test, unique = split_bbc(a.workdir)
    model = os.path.join(a.workdir, "model")
    start = time.perf_counter()
    if not os.path.isfile(os.path.join(model, "m3cls.json")):
        m3cls("train", "--model_name_or_path", "bundled", "--data_path", train, "--output_dir", model,
              "--max_length", a.max_length, "--num_train_epochs", a.epochs, "--learning_rate", a.lr,
              "--overwrite_output_dir", "--save_total_limit", "1", *a.extra.split())
    trained = time.perf_counter() - start
    results = {}
    for mode in ("truncate", "chunks"):
        out = os.path.join(a.workdir, f"eval_{mode}.json")
        m3cls("evaluate", "--model_path", model, "--data_path", test, "--long_text", mode, "--stride", a.stride,
              "--output", out)
        results[mode] = json.load(open(out))
    meta = json.load(open(os.path.join(model, "m3cls.json")))
    t, c = results["truncate"], results["chunks"]
    print(f"\nBBC News, {unique} unique articles; held-out test: {t['n']}; bundled MiniLM, max_length "
          f"{a.max_length}, {a.epochs} epochs at learning rate {a.lr} {a.extra} (training took {trained:.0f} s)")
    print(f"{'':34}{'accuracy':>10}{'macro-F1':>10}")
    print(f"{'truncate (first 128 tokens)':34}{t['after']['accuracy']:>10.4f}{t['after']['macro_f1']:>10.4f}")
    print(f"{'chunks (stride ' + a.stride + ', mean logits)':34}{c['after']['accuracy']:>10.4f}"
          f"{c['after']['macro_f1']:>10.4f}")
    print(f"temperature fitted on validation: {meta['temperature']:.3f}")
    for name, r in (("truncate", t), ("chunks", c)):
        print(f"held-out ECE ({name}): {r['before']['ece']:.4f} before -> {r['after']['ece']:.4f} after; "
              f"log-loss {r['before']['log_loss']:.4f} -> {r['after']['log_loss']:.4f}")
    calibrate_on_held_out(a.workdir, model, test)
    base = meta["baseline"]
    print(f"validation: model accuracy {meta['metrics']['accuracy']:.4f} / macro-F1 {meta['metrics']['macro_f1']:.4f}"
          f"; TF-IDF + LR baseline {base['accuracy']:.4f} / {base['macro_f1']:.4f}")


if __name__ == "__main__":
    main()

"""The probe against fine-tuning on BBC News with the bundled MiniLM, and the label audit on injected flips.

Every step runs the ``m3cls`` CLI in a fresh process, timed end to end (process start, imports, model loading,
data reading and saving included), as a user would run it: wall time, and the CPU time (user + system) of the
process, which depends less on what else runs on a shared machine. All runs use ``max_length 128`` and the default
split (10% stratified validation, seed 42), so their scores are on the same validation texts:

1. ``train --method probe`` with an empty cache folder (cold: embedding, data inspection, head), ``--cold_runs``
   times (the cache emptied before each; the median is the figure, the range is printed beside it);
2. the same with another head setting (``--probe_c 0.5``) on the warm cache;
3. ``train`` (fine-tuning, 3 epochs as ``m3cls train``'s default, learning rate 1e-4 as ``examples/train.yaml``);
4. ``train --method probe`` on the warm cache with the baseline on: the ladder's TF-IDF rung (score, wall time);
5. ``audit`` on a copy of the data with 5% of the labels flipped to another topic (seeded): the share of the
   flipped records among the top 10% of suspects.

``--part int8`` runs only step 1 with ``--embed_backend onnx`` (the encoder exported once to a fused dynamic-int8
graph, each text run alone) on its own empty cache: the export is part of the time.

Runs 1-3 leave the TF-IDF baseline, the report and (for fine-tuning) the ladder's probe rung off, so each side
is timed doing its own work only.

    python benchmarks/probe.py --workdir runs/probe-bench [--epochs 3] [--cold_runs 3] [--flip_share 0.05]
        [--part all|int8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time

from m3cls.data.demo import bbc_news, to_messages

COMMON = ["--model_name_or_path", "bundled", "--max_length", "128", "--overwrite_output_dir"]


def m3cls(*args: str) -> tuple[float, float]:
    """Run one m3cls command in a fresh process; its (wall, CPU) seconds."""
    print("$ m3cls " + " ".join(args), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "m3cls", *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"  wall {wall:.1f} s, CPU {cpu:.1f} s, load average {load()}", flush=True)
    return wall, cpu


def write_data(workdir: str, flip_share: float, seed: int) -> tuple[str, str, set[int]]:
    """BBC News in the messages format, and a copy with ``flip_share`` of the labels moved to another topic."""
    pairs = bbc_news()
    topics = sorted({y for _, y in pairs})
    rng = random.Random(seed)
    flipped = set(rng.sample(range(len(pairs)), round(flip_share * len(pairs))))
    noisy = [(t, rng.choice([o for o in topics if o != y]) if i in flipped else y) for i, (t, y) in enumerate(pairs)]
    paths = []
    for name, part in (("bbc.json", pairs), ("bbc_flipped.json", noisy)):
        path = os.path.join(workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump([to_messages(t, y) for t, y in part], f, ensure_ascii=False)
        paths.append(path)
    return paths[0], paths[1], flipped


def meta(folder: str) -> dict:
    with open(os.path.join(folder, "m3cls.json"), encoding="utf-8") as f:
        return json.load(f)


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/probe-bench")
    p.add_argument("--epochs", default="3", help="fine-tuning epochs (m3cls' default 3; the reference runs 5)")
    p.add_argument("--lr", default="1e-4")
    p.add_argument("--flip_share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part", choices=("all", "int8"), default="all")
    p.add_argument("--cold_runs", type=int, default=3, help="cold probe runs; the median is reported")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    data, noisy, flipped = write_data(a.workdir, a.flip_share, a.seed)
    if a.part == "int8":
        return int8(a.workdir, data)
    cache = os.path.join(a.workdir, "cache")
    out = {name: os.path.join(a.workdir, name) for name in ("probe", "probe_warm", "finetune", "ladder", "audit")}
    quiet = ["--no_baseline", "--no_report"]
    print(f"load average before: {load()}", flush=True)
    probe = ["train", "--method", "probe", "--data_path", data, "--cache_dir", cache, *COMMON]
    colds = []
    for _ in range(max(1, a.cold_runs)):
        shutil.rmtree(cache, ignore_errors=True)
        colds.append(m3cls(*probe, "--output_dir", out["probe"], *quiet))
    t_cold = tuple(statistics.median(run[i] for run in colds) for i in (0, 1))
    print(f"cold probe runs, wall: {', '.join(f'{w:.1f}' for w, _ in colds)} s; median {t_cold[0]:.1f} s",
          flush=True)
    t_warm = m3cls(*probe, "--output_dir", out["probe_warm"], "--probe_c", "0.5", *quiet)
    t_fine = m3cls("train", "--data_path", data, "--output_dir", out["finetune"], *COMMON, "--num_train_epochs",
                   a.epochs, "--learning_rate", a.lr, "--per_device_train_batch_size", "16", "--save_total_limit",
                   "1", "--no_ladder", *quiet)
    t_ladder = m3cls(*probe, "--output_dir", out["ladder"])
    t_audit = m3cls("audit", "--data_path", noisy, "--output_dir", out["audit"], "--cache_dir", cache, *COMMON,
                    "--folds", "5")
    print(f"load average after: {load()}", flush=True)
    report(a, out, flipped, {"cold": t_cold, "warm": t_warm, "finetune": t_fine, "ladder": t_ladder,
                             "audit": t_audit, "cold_runs": colds})


def int8(workdir: str, data: str) -> None:
    cache, out = os.path.join(workdir, "cache_int8"), os.path.join(workdir, "probe_int8")
    shutil.rmtree(cache, ignore_errors=True)
    wall, cpu = m3cls("train", "--method", "probe", "--embed_backend", "onnx", "--data_path", data, "--cache_dir",
                      cache, *COMMON, "--output_dir", out, "--no_baseline", "--no_report")
    m, e = meta(out)["metrics"], meta(out)["probe"]
    print(f"probe, int8 ONNX embedding, cold cache (export included): wall {wall:.1f} s, CPU {cpu:.1f} s, "
          f"accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} (embedding {e['embedding_seconds']:.1f} s, "
          f"head {e['head_seconds']:.1f} s)")


def report(a, out: dict, flipped: set[int], seconds: dict) -> None:
    cold, warm, fine, ladder = (meta(out[k]) for k in ("probe", "probe_warm", "finetune", "ladder"))
    tfidf = next(r for r in ladder["ladder"] if r["rung"] == "tfidf")
    print(f"\nBBC News ({sum(cold['data']['train_counts'].values())} train / "
          f"{sum(cold['data']['validation_counts'].values())} validation articles), bundled MiniLM, max_length 128")
    print(f"{'run':44}{'wall s':>9}{'CPU s':>9}{'accuracy':>10}{'macro-F1':>10}")
    rows = [(f"probe, cold cache (median of {a.cold_runs})", seconds["cold"], cold["metrics"]),
            ("probe, warm cache (--probe_c 0.5)", seconds["warm"], warm["metrics"]),
            (f"fine-tuning, {a.epochs} epochs", seconds["finetune"], fine["metrics"]),
            ("TF-IDF + logistic regression (ladder rung)", (tfidf["seconds"], float("nan")), tfidf)]
    for name, (wall, cpu), m in rows:
        print(f"{name:44}{wall:>9.1f}{cpu:>9.1f}{m['accuracy']:>10.4f}{m['macro_f1']:>10.4f}")
    e = cold["probe"]
    print(f"cold probe inside the process: embedding {e['embedding_seconds']:.1f} s, head {e['head_seconds']:.1f} s; "
          f"warm: embedding {warm['probe']['embedding_seconds']:.1f} s ({warm['probe']['cached']} of "
          f"{warm['probe']['texts']} texts from the cache)")
    print(f"fine-tuning's training loop: {fine['training'].get('train_runtime', float('nan')):.1f} s")
    (fw, fc), (cw, cc) = seconds["finetune"], seconds["cold"]
    print(f"end to end, fine-tuning / cold probe: {fw / cw:.1f}x in wall time, {fc / cc:.1f}x in CPU time; "
          f"warm probe run: {seconds['warm'][0]:.1f} s wall, {seconds['warm'][1]:.1f} s CPU")
    runs = seconds["cold_runs"]
    print(f"each cold run: wall {', '.join(f'{w:.1f}' for w, _ in runs)} s (fine-tuning / it: "
          f"{', '.join(f'{fw / w:.1f}x' for w, _ in runs)}); CPU {', '.join(f'{c:.1f}' for _, c in runs)} s")
    suspects = [json.loads(line) for line in open(os.path.join(out["audit"], "suspects.jsonl"), encoding="utf-8")]
    n = sum(cold["data"]["train_counts"].values()) + sum(cold["data"]["validation_counts"].values())
    top = {s["index"] for s in suspects[: round(0.1 * n)]}
    found = len(top & flipped)
    print(f"audit ({seconds['audit'][0]:.1f} s, 5 folds on the warm cache): {len(suspects)} suspects; the top "
          f"{round(0.1 * n)} (10% of {n}) hold {found} of the {len(flipped)} flipped labels "
          f"({found / len(flipped):.1%}); all suspects hold {len({s['index'] for s in suspects} & flipped)}")
    print(f"ladder run (warm probe + TF-IDF + report): {seconds['ladder'][0]:.1f} s")


if __name__ == "__main__":
    main()

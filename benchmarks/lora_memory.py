"""Full fine-tuning against LoRA on the bundled MiniLM: trainable share, peak memory (RSS), speed, macro-F1.

Each run is a separate `m3cls train` process, so its peak RSS is its own.

    python benchmarks/lora_memory.py [--texts 640] [--max_length 128] [--rank 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile

from m3cls.data.demo import bbc_news


def run(args: list[str]) -> float:
    """Run a command; return the peak RSS (MB) of the largest child so far."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, M3CLS_LOG_LEVEL="WARNING"))
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", type=int, default=640)
    p.add_argument("--max_length", default="128")
    p.add_argument("--rank", default="8")
    a = p.parse_args()
    pairs = bbc_news()
    random.Random(0).shuffle(pairs)
    work = tempfile.mkdtemp(prefix="m3cls-lora-")
    data = os.path.join(work, "train.jsonl")
    with open(data, "w") as f:
        f.writelines(json.dumps({"text": t, "label": y}) + "\n" for t, y in pairs[: a.texts])
    base = [sys.executable, "-m", "m3cls", "train", "--model_name_or_path", "bundled", "--data_path", data,
            "--max_length", a.max_length, "--num_train_epochs", "2", "--no_report", "--no_baseline",
            "--save_strategy", "no", "--eval_strategy", "no", "--load_best_model_at_end", "False"]
    rows = []
    # LoRA first: RUSAGE_CHILDREN keeps the maximum over all children, so the smaller run must come first
    for name, extra in (("LoRA r=" + a.rank, ["--lora_r", a.rank, "--learning_rate", "1e-3"]),
                        ("full fine-tuning", ["--learning_rate", "1e-4"])):
        out = os.path.join(work, name.split()[0].lower())
        rss = run(base + ["--output_dir", out, *extra])
        meta = json.load(open(os.path.join(out, "m3cls.json")))
        lora = meta.get("lora", {})
        rows.append((name, rss, meta["training"]["train_samples_per_second"], meta["metrics"]["macro_f1"],
                     lora.get("trainable_share", 1.0), lora.get("optimizer_and_gradient_memory_saved_mb")))
    print(f"bundled MiniLM, {a.texts} BBC texts, max_length {a.max_length}, 2 epochs, validation 10%")
    for name, rss, speed, f1, share, saved in rows:
        est = f", estimated gradient+optimizer memory saved {saved:.0f} MB" if saved else ""
        print(f"{name:<18} peak RSS {rss:6.0f} MB  {speed:6.2f} samples/s  macro-F1 {f1:.4f}  trainable "
              f"{100 * share:.2f}%{est}")


if __name__ == "__main__":
    main()

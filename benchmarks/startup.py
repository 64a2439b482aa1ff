"""The fixed costs of a CLI run, each lever against its absence, every side in a fresh process timed the same way.

1. ``gc``: importing what ``m3cls train`` imports (torch, transformers' TrainingArguments and model code,
   scikit-learn's logistic regression), then exiting: with Python's default garbage collector, and as
   ``m3cls.cli.run`` sets it (first threshold ``GC_THRESHOLD``, ``gc.freeze()`` at exit). Import time is
   measured inside the process; exit time is the process's wall time after its last line.
2. ``tokenizer``: the bundled MiniLM's tokenizer over the BBC News articles at full length, with
   ``TOKENIZERS_PARALLELISM=false`` (what m3cls set before) and unset (the tokenizer's default, m3cls' now).
3. ``near_duplicates``: the character 3-4-gram vectors of the near-duplicate check over BBC News: scikit-learn's
   ``HashingVectorizer(analyzer="char_wb")`` (what m3cls used before) and ``m3cls.data.inspection.char_gram_vectors``;
   each side's libraries are imported before the clock starts.

Each side runs ``--runs`` times (default 3), alternating; the median is printed.

    python benchmarks/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

IMPORTS = """
import gc, sys, time
if sys.argv[1] == "m3cls":
    from m3cls.cli import GC_THRESHOLD
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
start = time.perf_counter()
import torch, sklearn.linear_model
from transformers import TrainingArguments, AutoModel, BertModel
print(time.perf_counter() - start, flush=True)
if sys.argv[1] == "m3cls":
    gc.freeze()
"""

TOKENIZE = """
import json, sys, time
from m3cls.data.demo import bbc_news
from m3cls.model.loading import load_tokenizer
texts = [t for t, _ in bbc_news()]
tokenizer = load_tokenizer("bundled")
start = time.perf_counter()
tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False)
print(time.perf_counter() - start)
"""

NEAR = """
import sys, time
from m3cls.data.demo import bbc_news
texts = [t for t, _ in bbc_news()]
if sys.argv[1] == "sklearn":
    from sklearn.feature_extraction.text import HashingVectorizer
    start = time.perf_counter()
    HashingVectorizer(analyzer="char_wb", ngram_range=(3, 4), n_features=2**20, alternate_sign=False,
                      norm="l2").transform([t[:1000] for t in texts])
else:
    import scipy.sparse  # noqa: F401 (imported before the clock, as scikit-learn is)
    from m3cls.data.inspection import char_gram_vectors
    start = time.perf_counter()
    char_gram_vectors(texts)
print(time.perf_counter() - start)
"""


def run(code: str, side: str, env: dict) -> tuple[float, float]:
    """(the seconds the script printed, the seconds from its printing to the process's end)."""
    process = subprocess.Popen([sys.executable, "-c", code, side], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    line = process.stdout.readline()
    printed = time.perf_counter()
    process.wait()
    if process.returncode:
        raise SystemExit(f"{side}: exit code {process.returncode}")
    return float(line), time.perf_counter() - printed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    env_off = {**env, "TOKENIZERS_PARALLELISM": "false"}
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(a.runs):
        for name, code, side, environment in (("imports+exit, default gc", IMPORTS, "default", env),
                                              ("imports+exit, m3cls gc", IMPORTS, "m3cls", env),
                                              ("tokenize, TOKENIZERS_PARALLELISM=false", TOKENIZE, "-", env_off),
                                              ("tokenize, unset", TOKENIZE, "-", env),
                                              ("near-dup vectors, scikit-learn char_wb", NEAR, "sklearn", env),
                                              ("near-dup vectors, m3cls numpy", NEAR, "m3cls", env)):
            results.setdefault(name, []).append(run(code, side, environment))
    print(f"{'side':44}{'timed s':>9}{'exit s':>8}")
    table = {}
    for name, runs in results.items():
        timed, tail = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        table[name] = {"seconds": round(timed, 3), "exit_seconds": round(tail, 3)}
        print(f"{name:44}{timed:>9.2f}{tail:>8.2f}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()

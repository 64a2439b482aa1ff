"""Training and prediction speed of m3cls against the anchors, in one run, on the same data and model.

Anchors (what issue 3 calls the reference approach):
- training: the transformers Trainer with every text padded to max_length (``padding="max_length"``), fp32,
  the model's default dropout, Trainer defaults otherwise;
- prediction: ``transformers.pipeline("text-classification", batch_size=32)`` (fp32, truncation at max_length).

m3cls is measured through its CLI (``m3cls train`` / ``m3cls predict``) with its defaults. Data: BBC News
articles at 512 tokens ("long"), and BBC sentences labelled with their article's topic ("short", most under
64 tokens). Every measurement runs in a fresh process so peak memory (RSS) is its own. Ratios are m3cls over
the anchor. Run:

    python benchmarks/speed.py --quick            # small sets, one run of each (about 12 minutes on 2 cores)
    python benchmarks/speed.py --quick --runs 3   # the same sets, medians of 3 runs (the README's figures)
    python benchmarks/speed.py                    # larger sets, medians of 3 runs (long)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)


# -- data ----------------------------------------------------------------------------------------------------
def bbc_sets(n_train: int, n_test: int, short: bool, seed: int = 0) -> tuple[list, list]:
    from m3cls.demo import bbc_news

    pairs = bbc_news()
    if short:
        sentences = []
        for text, label in pairs:
            for s in re.split(r"(?<=[.!?])\s+", text):
                if 6 <= len(s.split()) <= 40:
                    sentences.append((s, label))
        pairs = sentences
    rng = random.Random(seed)
    rng.shuffle(pairs)
    return pairs[:n_train], pairs[n_train: n_train + n_test]


def write_jsonl(path: str, pairs: list) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in pairs:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


# -- workers (each in its own process) ------------------------------------------------------------------------
def worker_reference_train(a) -> dict:
    """The reference approach: pad to max_length, fp32, default dropout, Trainer defaults."""
    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from m3cls.modeling import resolve_model_name

    train = [json.loads(line) for line in open(a.train)]
    test = [json.loads(line) for line in open(a.test)]
    names = sorted({r["label"] for r in train})
    path = resolve_model_name("bundled")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})

    def encode(rows):
        enc = tok([r["text"] for r in rows], padding="max_length", truncation=True, max_length=a.max_length)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": names.index(r["label"])} for i, r in enumerate(rows)]

    args = TrainingArguments(output_dir=tempfile.mkdtemp(), num_train_epochs=a.epochs, per_device_train_batch_size=16,
                             learning_rate=1e-4, save_strategy="no", report_to="none", disable_tqdm=True,
                             logging_strategy="no", seed=42, dataloader_pin_memory=False)
    trainer = Trainer(model=model, args=args, train_dataset=encode(train))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    preds = trainer.predict(encode(test)).predictions.argmax(-1)
    y = np.array([names.index(r["label"]) for r in test])
    from m3cls.metrics import classification_report

    report = classification_report(y, preds, names)
    return {"samples_per_s": len(train) * a.epochs / seconds, "macro_f1": report["macro_f1"],
            "accuracy": report["accuracy"]}


def worker_m3cls_train(a) -> dict:
    """`m3cls train` through its CLI with its defaults (extra flags from --flags)."""
    from m3cls.cli import main

    out = a.model or tempfile.mkdtemp()
    flags = ["--model_name_or_path", "bundled", "--data_path", a.train, "--output_dir", out, "--overwrite_output_dir",
             "--max_length", str(a.max_length), "--num_train_epochs", str(a.epochs), "--learning_rate", "1e-4",
             "--per_device_train_batch_size", "16", "--save_strategy", "no", "--no_baseline", "--no_report",
             "--validation_path", a.test, "--eval_strategy", "no", "--load_best_model_at_end", "False",
             *a.flags.split()]
    if main(["train", *flags]) != 0:
        raise SystemExit("m3cls train failed")
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    return {"samples_per_s": meta["training"]["train_samples_per_second"], "macro_f1": meta["metrics"]["macro_f1"],
            "accuracy": meta["metrics"]["accuracy"], "precision": meta["precision"]}


def worker_pipeline_predict(a) -> dict:
    from transformers import pipeline

    texts = [json.loads(line)["text"] for line in open(a.test)]
    labels = [json.loads(line)["label"] for line in open(a.test)]
    pipe = pipeline("text-classification", model=a.model, tokenizer=a.model, device="cpu")
    pipe(texts[:4], batch_size=32, truncation=True, max_length=a.max_length)
    start = time.perf_counter()
    out = pipe(texts, batch_size=32, truncation=True, max_length=a.max_length)
    seconds = time.perf_counter() - start
    return {"texts_per_s": len(texts) / seconds, "accuracy": sum(o["label"] == y for o, y in zip(out, labels)) / len(texts)}


def worker_m3cls_predict(a) -> dict:
    """m3cls prediction as `m3cls predict --input --output` runs it (streamed blocks, JSONL written), timed
    after the model is loaded and warmed up, like the pipeline; `cli_texts_per_s` also counts the load."""
    from m3cls import Classifier
    from m3cls.cli import main

    rows = [json.loads(line) for line in open(a.test)]
    flags = dict(f.split("=", 1) for f in a.flags.split()) if a.flags else {}
    clf = Classifier.from_pretrained(a.model, max_length=a.max_length, precision=flags.get("precision", "auto"),
                                     backend=flags.get("backend", "torch"))
    clf.predict([r["text"] for r in rows[:4]])
    out = os.path.join(tempfile.mkdtemp(), "preds.jsonl")
    start = time.perf_counter()
    with open(out, "w") as f:
        predictions = [p.label for p in clf.predict_stream(r["text"] for r in rows)]
        f.writelines(json.dumps({"index": i, "label": p}) + "\n" for i, p in enumerate(predictions))
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    cli_flags = [f"--{k}={v}" for k, v in flags.items()]
    if main(["predict", "--model_path", a.model, "--input", a.test, "--output", out, "--max_length",
             str(a.max_length), *cli_flags]) != 0:
        raise SystemExit("m3cls predict failed")
    cli_seconds = time.perf_counter() - start
    accuracy = sum(p == r["label"] for p, r in zip(predictions, rows)) / len(rows)
    return {"texts_per_s": len(rows) / seconds, "cli_texts_per_s": len(rows) / cli_seconds, "accuracy": accuracy}


WORKERS = {"reference_train": worker_reference_train, "m3cls_train": worker_m3cls_train,
           "pipeline_predict": worker_pipeline_predict, "m3cls_predict": worker_m3cls_predict}


def run_worker(kind: str, **kwargs) -> dict:
    cmd = [sys.executable, HERE, "--worker", kind]
    for key, value in kwargs.items():
        cmd += [f"--{key}", str(value)]
    env = dict(os.environ, M3CLS_LOG_LEVEL="WARNING", TRANSFORMERS_VERBOSITY="error")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {kind}: {json.dumps(result)}", flush=True)
    return result


# -- orchestration ---------------------------------------------------------------------------------------------
def median_of(runs: int, kind: str, **kwargs) -> dict:
    results = [run_worker(kind, **kwargs) for _ in range(runs)]
    merged = {k: statistics.median(r[k] for r in results) if isinstance(results[0][k], (int, float)) else results[0][k]
              for k in results[0]}
    merged["runs"] = [round(r.get("samples_per_s", r.get("texts_per_s", 0)), 2) for r in results]
    return merged


def bench_case(name: str, short: bool, sizes: dict, runs: int, workdir: str, epochs: int,
               predict_only: bool = False) -> dict:
    train, test = bbc_sets(sizes["train"], sizes["test"], short)
    train_path = write_jsonl(os.path.join(workdir, f"{name}_train.jsonl"), train)
    test_path = write_jsonl(os.path.join(workdir, f"{name}_test.jsonl"), test)
    ref_train = write_jsonl(os.path.join(workdir, f"{name}_ref_train.jsonl"), train[: sizes["ref_train"]])
    common = {"test": test_path, "max_length": 512, "epochs": epochs}
    print(f"[{name}] training: reference approach on {sizes['ref_train']} texts, m3cls on {len(train)}", flush=True)
    model = os.path.join(workdir, f"{name}_model")  # the last m3cls training run serves prediction
    ref = ours = ours_fp32 = None
    if not predict_only or not os.path.isfile(os.path.join(model, "m3cls.json")):
        ref = median_of(runs, "reference_train", train=ref_train, **common, flags="")
        ours = median_of(runs, "m3cls_train", train=train_path, **common, flags="", model=model)
        ours_fp32 = median_of(1, "m3cls_train", train=train_path, **common,
                              flags="--precision fp32 --attention_dropout model")
    print(f"[{name}] prediction on {len(test)} texts", flush=True)
    pipe = median_of(runs, "pipeline_predict", model=model, test=test_path, max_length=512, flags="")
    pred = median_of(runs, "m3cls_predict", model=model, test=test_path, max_length=512, flags="")
    variants = {"torch fp32": (model, "precision=fp32")}
    onnx_dir = os.path.join(workdir, f"{name}_onnx")
    if not os.path.isdir(onnx_dir):
        subprocess.run([sys.executable, "-m", "m3cls", "export", "--model_path", model, "--output", onnx_dir,
                        "--quantize", "int8"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    variants["onnx int8"] = (onnx_dir, "backend=onnx")
    for label, (folder, flags) in variants.items():
        pred[label] = median_of(1, "m3cls_predict", model=folder, test=test_path, max_length=512, flags=flags)
    return {"reference_train": ref, "m3cls_train": ours, "m3cls_train_fp32_default_dropout": ours_fp32,
            "pipeline_predict": pipe, "m3cls_predict": pred}


def report(name: str, r: dict) -> None:
    rt, mt, mf = r["reference_train"], r["m3cls_train"], r["m3cls_train_fp32_default_dropout"]
    pp, mp = r["pipeline_predict"], r["m3cls_predict"]
    print(f"\n== {name} texts ==")
    if rt is None:
        print("training   (not measured: --predict_only)")
    else:
        report_training(rt, mt, mf)
    report_prediction(pp, mp)


def report_training(rt: dict, mt: dict, mf: dict) -> None:
    print(f"training   reference {rt['samples_per_s']:7.2f} samples/s (RSS {rt['rss_mb']:.0f} MB)   m3cls "
          f"{mt['samples_per_s']:7.2f} samples/s (RSS {mt['rss_mb']:.0f} MB, {mt['precision']})   ratio "
          f"{mt['samples_per_s'] / rt['samples_per_s']:.2f}x   runs {rt['runs']} / {mt['runs']}")
    print(f"accuracy   m3cls defaults macro-F1 {mt['macro_f1']:.4f} (acc {mt['accuracy']:.4f}); fp32 + model "
          f"dropout macro-F1 {mf['macro_f1']:.4f}; difference {100 * (mt['macro_f1'] - mf['macro_f1']):+.2f} points;"
          f" reference approach (fewer texts) macro-F1 {rt['macro_f1']:.4f}")


def report_prediction(pp: dict, mp: dict) -> None:
    print(f"prediction pipeline  {pp['texts_per_s']:7.2f} texts/s (RSS {pp['rss_mb']:.0f} MB, acc {pp['accuracy']:.4f})"
          f"   m3cls {mp['texts_per_s']:7.2f} texts/s (RSS {mp['rss_mb']:.0f} MB, acc {mp['accuracy']:.4f})   ratio "
          f"{mp['texts_per_s'] / pp['texts_per_s']:.2f}x   runs {pp['runs']} / {mp['runs']}")
    print(f"           m3cls CLI end to end (model load included): {mp['cli_texts_per_s']:.2f} texts/s")
    for label in ("torch fp32", "onnx int8"):
        v = mp[label]
        print(f"           {label:<11} {v['texts_per_s']:7.2f} texts/s (RSS {v['rss_mb']:.0f} MB, acc {v['accuracy']:.4f})"
              f"   ratio to pipeline {v['texts_per_s'] / pp['texts_per_s']:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker")
    p.add_argument("--train")
    p.add_argument("--test")
    p.add_argument("--model")
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--flags", default="")
    p.add_argument("--quick", action="store_true", help="small sets, one run each (a few minutes)")
    p.add_argument("--runs", type=int, default=None, help="runs per measure (default: 3, or 1 with --quick)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--cases", default="long,short")
    p.add_argument("--predict_only", action="store_true", help="reuse the workdir's models; skip training")
    a = p.parse_args()
    if a.worker:
        result = WORKERS[a.worker](a)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    runs = a.runs or (1 if a.quick else 3)
    sizes = {"long": {"train": 160, "ref_train": 48, "test": 128}, "short": {"train": 1600, "ref_train": 48, "test": 1024}}
    if not a.quick:
        sizes = {"long": {"train": 800, "ref_train": 96, "test": 400}, "short": {"train": 6000, "ref_train": 96,
                                                                                 "test": 4000}}
    workdir = a.workdir or tempfile.mkdtemp(prefix="m3cls-bench-")
    os.makedirs(workdir, exist_ok=True)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; workdir {workdir}; runs per measure {runs}")
    results = {}
    for name in a.cases.split(","):
        results[name] = bench_case(name, name == "short", sizes[name], runs, workdir, a.epochs, a.predict_only)
    for name, r in results.items():
        report(name, r)
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

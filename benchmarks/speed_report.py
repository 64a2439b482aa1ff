"""The tables of benchmarks/speed.py: rates, ratios against every peer, model FLOPs and share of peak, int8 checks.

``python benchmarks/speed_report.py WORKDIR/results.json`` prints them again from a finished run.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flops import bert_shape, formula, forward_flops  # noqa: E402

PREDICT_PEERS = [  # peer, its default precision's m3cls twin for "equal precision"
    ("pipeline fp32", "m3cls fp32", True),
    ("pipeline bf16", "m3cls bf16", False),
    ("onnxruntime fp32", "m3cls fp32", True),
    ("CrossEncoder fp32", "m3cls fp32", True),
]
TRAIN_PEERS = [("reference fp32", "m3cls fp32", True), ("reference bf16", "m3cls bf16", False)]


def model_shape() -> dict:
    from m3cls.model.loading import resolve_model_name

    with open(os.path.join(resolve_model_name("bundled"), "config.json"), encoding="utf-8") as f:
        config = json.load(f)

    class Config:
        num_hidden_layers, hidden_size = config["num_hidden_layers"], config["hidden_size"]
        intermediate_size = config["intermediate_size"]

    return bert_shape(Config, labels=5)


def peak_of(peak: dict, precision: str) -> float:
    t = peak["tflops"]
    return {"bf16": t["bf16"], "fp32": t["fp32"], "int8": t.get("int8 onnxruntime", t["int8 torch"])}[precision]


def precision_of(name: str) -> str:
    return next(p for p in ("bf16", "fp32", "int8") if p in name)


def share(tflops: float, peak: dict, precision: str) -> str:
    return f"{100 * tflops / peak_of(peak, 'bf16'):.0f}% / {100 * tflops / peak_of(peak, precision):.0f}%"


def prediction_table(case: dict, peak: dict, shape: dict) -> None:
    tokens = case["tokens"]["test"]
    gflop_per_text = sum(forward_flops(n, shape) for n in tokens) / len(tokens) / 1e9
    print(f"\nprediction: {len(tokens)} texts, {sum(tokens) / len(tokens):.0f} tokens on average, "
          f"{gflop_per_text:.2f} GFLOP per text")
    print("| side | texts/s (runs) | setup s | accuracy | macro-F1 | peak RSS MB | model TFLOP/s | share of peak: "
          "bf16 / own precision |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in case["predict"].items():
        tflops = r["rate"] * gflop_per_text / 1e3
        print(f"| {name} | {r['rate']:.2f} ({', '.join(map(str, r['runs']))}) | {r['setup_s']:.1f} | "
              f"{r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['rss_mb']:.0f} | {tflops:.3f} | "
              f"{share(tflops, peak, precision_of(name))} |")
    ratios(case["predict"], PREDICT_PEERS, "prediction")


def training_table(case: dict, peak: dict, shape: dict) -> None:
    t = case["tokens"]
    train_flops = 3 * sum(forward_flops(n, shape) for n in t["train"])
    job_flops = train_flops + sum(forward_flops(n, shape) for n in t["val"])
    print(f"\ntraining: {len(t['train'])} texts ({sum(t['train']) / len(t['train']):.0f} tokens on average), "
          f"1 epoch, batch 16, then {len(t['val'])} validation texts; {train_flops / len(t['train']) / 1e9:.1f} "
          f"GFLOP per training text")
    print("| side | samples/s, whole job (runs) | setup s | optimizer steps | samples/s, training loop | "
          "validation macro-F1 | peak RSS MB | model TFLOP/s, job / loop | share of peak (job, loop): bf16 / own |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in case["train"].items():
        job = job_flops * r["rate"] / r["n"] / 1e12
        loop = train_flops / r["loop_s"] / 1e12
        p = precision_of(name)
        print(f"| {name} | {r['rate']:.2f} ({', '.join(map(str, r['runs']))}) | {r['setup_s']:.1f} | {r['steps']} | "
              f"{r['n'] / r['loop_s']:.2f} | {r['macro_f1']:.4f} | {r['rss_mb']:.0f} | {job:.3f} / {loop:.3f} | "
              f"{share(job, peak, p)}, {share(loop, peak, p)} |")
    ratios(case["train"], TRAIN_PEERS, "training")


def ratios(measures: dict, peers: list, what: str) -> None:
    print(f"\n| {what}: m3cls over | default vs default (m3cls bf16) | equal precision |")
    print("|---|---|---|")
    for peer, twin, is_default in peers:
        if peer not in measures:
            continue
        base = measures[peer]["rate"]
        default = f"{measures['m3cls bf16']['rate'] / base:.2f}x" if is_default else "(not a default)"
        print(f"| {peer} | {default} | {measures[twin]['rate'] / base:.2f}x ({twin}) |")


def int8_checks(results: dict) -> None:
    print("\nint8 (static, calibrated) checks")
    for name in ("long", "short"):
        if name not in results:
            continue
        pr = results[name].get("predict")
        if pr:
            i8, b16 = pr["m3cls int8"], pr["m3cls bf16"]
            print(f"- {name}: int8 {i8['rate']:.2f} texts/s against bf16 torch {b16['rate']:.2f}: "
                  f"{i8['rate'] / b16['rate']:.2f}x (runs {i8['runs']} / {b16['runs']}); macro-F1 {i8['macro_f1']:.4f} "
                  f"against {b16['macro_f1']:.4f} ({100 * (i8['macro_f1'] - b16['macro_f1']):+.2f} points)")
        det = results[name].get("determinism")
        if det:
            print(f"- batch independence: {det['labels_changed']} of {det['texts']} labels changed between the texts in "
                  f"order (batch 32) and shuffled (batch 7); largest probability change "
                  f"{det['largest_probability_change']:.2e}")


def report(results: dict) -> None:
    peak, shape = results["peak"], model_shape()
    print(f"\n== {results.get('command', 'speed.py')} ==")
    print(f"peak ({peak['cpu']}, {peak['threads']} threads, {peak['size']}^2, median of {peak['repeats']}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in peak["tflops"].items()) + " TFLOP/s")
    if "peak_after" in results:
        print("peak again at the end: " + ", ".join(f"{k} {v:.3f}" for k, v in results["peak_after"]["tflops"].items()))
    print(f"model FLOPs: {formula(shape)}")
    for name in ("long", "short"):
        if name in results:
            print(f"\n=== {name} texts ===")
            if "predict" in results[name]:
                prediction_table(results[name], peak, shape)
            if "train" in results[name]:
                training_table(results[name], peak, shape)
    int8_checks(results)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        report(json.load(f))

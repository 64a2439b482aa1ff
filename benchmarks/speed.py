"""m3cls against its peers, default against default and at equal precision, in one run, on the same data.

Peers, each in a fresh process and timed the same way (``benchmarks/speed_workers.py``: setup = imports and
model load, reported apart; work = first read of the input file to the last output written):

- prediction: ``transformers.pipeline`` in fp32 (its default) and with ``dtype=torch.bfloat16``; a hand
  ``torch.onnx.export`` run with onnxruntime (fp32); sentence-transformers' ``CrossEncoder`` (fp32);
- training: the reference approach (every text padded to max_length, the model's dropout, Trainer defaults)
  in fp32 and with ``bf16=True``, on the same texts, so with as many optimizer steps as m3cls.

m3cls runs through its CLI: ``m3cls train`` and ``m3cls predict`` with their defaults (bf16 on CPUs with
AVX512-BF16 or AMX), with ``--precision fp32`` for the equal-precision rows, and ``--backend onnx`` on a static
int8 export. Every m3cls figure is also given as model FLOPs per second and as a share of this machine's
matrix-product peak (``benchmarks/peak.py``, measured at the start of the run; formula in ``benchmarks/flops.py``).
The int8 checks: speed against bf16 torch from interleaved runs at 512 tokens, macro-F1 lost, and labels that
must not change when the same texts come in another order and batch size.

Data: BBC News articles cut at 512 tokens ("long") and BBC sentences labelled with their article's topic
("short"). Models for prediction are trained first by ``m3cls train`` (untimed). Run:

    python benchmarks/speed.py --quick                   # small sets, one run of each
    python benchmarks/speed.py --quick --runs 3          # medians of 3 (the README's figures)
    python benchmarks/speed.py --tiny                    # a few texts: checks the script (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import speed_report  # noqa: E402

SIZES = {  # timed training texts, validation texts, texts to train the prediction model on, texts to predict
    "quick": {"long": dict(train=48, val=32, prep=320, test=128, det=0),
              "short": dict(train=48, val=128, prep=1600, test=1024, det=10000)},
    "small": {"long": dict(train=16, val=16, prep=64, test=32, det=10000),
              "short": dict(train=16, val=64, prep=800, test=512, det=0)},
    "tiny": {"long": dict(train=16, val=8, prep=16, test=8, det=0),
             "short": dict(train=16, val=16, prep=64, test=32, det=200)},
    "full": {"long": dict(train=96, val=64, prep=800, test=400, det=0),
             "short": dict(train=96, val=512, prep=6000, test=4000, det=10000)},
}


def bbc_sets(short: bool, seed: int = 0) -> list[tuple[str, str]]:
    from m3cls.data.demo import bbc_news

    pairs = bbc_news()
    if short:
        pairs = [(s, label) for text, label in pairs for s in re.split(r"(?<=[.!?])\s+", text)
                 if 6 <= len(s.split()) <= 40]
    random.Random(seed).shuffle(pairs)
    return pairs


def write_jsonl(path: str, pairs) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in pairs:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return path


def run_worker(kind: str, **args) -> dict:
    cmd = [sys.executable, os.path.join(HERE, "speed_workers.py"), kind, json.dumps(args)]
    env = dict(os.environ, M3CLS_LOG_LEVEL="WARNING", TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="true")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if k != "probabilities"}
    print(f"  {kind} {args.get('precision', '')} {' '.join(args.get('flags', []))}: {json.dumps(shown)}", flush=True)
    return result


def medians(results: list[dict]) -> dict:
    """Per-key medians of numbers (rate = n / work_s per run, then the median), and each run's rate."""
    rates = [r["n"] / r["work_s"] for r in results]
    merged = {k: statistics.median(r[k] for r in results) if isinstance(results[0][k], (int, float)) else results[0][k]
              for k in results[0]}
    merged.update(rate=statistics.median(rates), runs=[round(x, 2) for x in rates])
    return merged


def interleaved(runs: int, measures: dict) -> dict:
    """Run every measure once per round, round after round, so slow phases of the machine hit all alike."""
    results: dict[str, list] = {name: [] for name in measures}
    for _ in range(runs):
        for name, (kind, args) in measures.items():
            results[name].append(run_worker(kind, **args))
    return {name: medians(r) for name, r in results.items()}


def token_lengths(texts: list[str], max_length: int) -> list[int]:
    from m3cls.model.loading import load_tokenizer

    return [len(x) for x in load_tokenizer("bundled")(texts, truncation=True, max_length=max_length)["input_ids"]]


def prepare(name: str, sizes: dict, workdir: str) -> dict:
    """Write the case's files, train the prediction model, and export it (static int8) and by hand (peer)."""
    pairs = bbc_sets(name == "short")
    n_train, n_val, n_prep, n_test = sizes["train"], sizes["val"], sizes["prep"], sizes["test"]
    test = pairs[:n_test]
    val = pairs[n_test: n_test + n_val]
    prep = pairs[n_test + n_val: n_test + n_val + n_prep]
    path = {k: write_jsonl(os.path.join(workdir, f"{name}_{k}.jsonl"), v)
            for k, v in (("test", test), ("val", val), ("prep", prep), ("train", prep[:n_train]))}
    path["labels"] = sorted({label for _, label in pairs})
    model = os.path.join(workdir, f"{name}_model")
    print(f"[{name}] preparing: m3cls trains the prediction model on {n_prep} texts (untimed), then exports it",
          flush=True)
    run_worker("m3cls_train", base="bundled", train=path["prep"], test=path["val"], max_length=512, epochs=1,
               out_model=model)
    onnx_dir = os.path.join(workdir, f"{name}_onnx")
    subprocess.run([sys.executable, "-m", "m3cls", "export", "--model_path", model, "--output", onnx_dir,
                    "--overwrite", "--quantize", "int8", "--calibration_data", path["prep"]], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hand = os.path.join(workdir, f"{name}_hand.onnx")
    run_worker("onnx_hand_export", model=model, onnx=hand)
    path.update(model=model, onnx_dir=onnx_dir, hand=hand)
    path["flops"] = {"test": token_lengths([t for t, _ in test], 512),
                     "train": token_lengths([t for t, _ in prep[:n_train]], 512),
                     "val": token_lengths([t for t, _ in val], 512)}
    return path


def bench_case(name: str, sizes: dict, runs: int, train_runs: int, workdir: str, parts: set) -> dict:
    p = prepare(name, sizes, workdir)
    out = os.path.join(workdir, f"{name}_preds.jsonl")
    common = dict(test=p["test"], max_length=512, out=out)
    result = {"sizes": sizes, "tokens": p["flops"]}
    if "predict" in parts:
        print(f"[{name}] prediction on {sizes['test']} texts, {runs} interleaved round(s)", flush=True)
        result["predict"] = interleaved(runs, {
            "m3cls bf16": ("m3cls_predict", dict(common, model=p["model"], flags=["--precision", "bf16"])),
            "m3cls int8": ("m3cls_predict", dict(common, model=p["onnx_dir"], flags=["--backend", "onnx"])),
            "m3cls fp32": ("m3cls_predict", dict(common, model=p["model"], flags=["--precision", "fp32"])),
            "pipeline fp32": ("pipeline_predict", dict(common, model=p["model"], precision="fp32")),
            "pipeline bf16": ("pipeline_predict", dict(common, model=p["model"], precision="bf16")),
            "onnxruntime fp32": ("onnxruntime_predict", dict(common, model=p["model"], onnx=p["hand"])),
            "CrossEncoder fp32": ("crossencoder_predict", dict(common, model=p["model"])),
        })
    save_partial(workdir, name, result)
    if sizes["det"] and "det" in parts:
        result["determinism"] = determinism(p, sizes["det"], workdir)
        save_partial(workdir, name, result)
    if "train" in parts:
        print(f"[{name}] training on {sizes['train']} texts (1 epoch, batch 16), validation {sizes['val']}, "
              f"{train_runs} interleaved round(s)", flush=True)
        tcommon = dict(base="bundled", train=p["train"], test=p["val"], max_length=512, epochs=1,
                       labels=p["labels"])
        result["train"] = interleaved(train_runs, {
            "m3cls bf16": ("m3cls_train", dict(tcommon, flags=["--precision", "bf16"])),
            "m3cls fp32": ("m3cls_train", dict(tcommon, flags=["--precision", "fp32"])),
            "reference fp32": ("reference_train", dict(tcommon, precision="fp32")),
            "reference bf16": ("reference_train", dict(tcommon, precision="bf16")),
        })
        save_partial(workdir, name, result)
    return result


def save_partial(workdir: str, name: str, result: dict) -> None:
    """What a case has measured so far (WORKDIR/partial_NAME.json), in case the run is stopped."""
    with open(os.path.join(workdir, f"partial_{name}.json"), "w") as f:
        json.dump(result, f, indent=2)


def determinism(p: dict, n: int, workdir: str) -> dict:
    """The int8 model's labels for n texts, in order in batches of 32 and shuffled in batches of 7."""
    pairs = bbc_sets(True, seed=1)[:n]
    order = list(range(len(pairs)))
    random.Random(2).shuffle(order)
    first = write_jsonl(os.path.join(workdir, "det_a.jsonl"), pairs)
    second = write_jsonl(os.path.join(workdir, "det_b.jsonl"), [pairs[i] for i in order])
    print(f"[determinism] int8 on {len(pairs)} texts: in order (batch 32), then shuffled (batch 7)", flush=True)
    a = run_worker("m3cls_predict", model=p["onnx_dir"], test=first, max_length=512, keep_labels=True,
                   keep_probabilities=True, out=os.path.join(workdir, "det_a_out.jsonl"),
                   flags=["--backend", "onnx", "--batch_size", "32"])
    b = run_worker("m3cls_predict", model=p["onnx_dir"], test=second, max_length=512, keep_labels=True,
                   keep_probabilities=True, out=os.path.join(workdir, "det_b_out.jsonl"),
                   flags=["--backend", "onnx", "--batch_size", "7"])
    back = [None] * len(order)
    for position, index in enumerate(order):
        back[index] = position
    labels = sum(a["labels"][i] != b["labels"][back[i]] for i in range(len(pairs)))
    largest = max(abs(a["probabilities"][i][k] - b["probabilities"][back[i]][k])
                  for i in range(len(pairs)) for k in a["probabilities"][i])
    return {"texts": len(pairs), "labels_changed": labels, "largest_probability_change": largest}


def measure_peak() -> dict:
    done = subprocess.run([sys.executable, os.path.join(HERE, "peak.py"), "--json", "--repeats", "10"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sets (the README's figures)")
    p.add_argument("--tiny", action="store_true", help="a few texts: checks the script itself, not the speed")
    p.add_argument("--small", action="store_true", help="fewer texts than --quick (a shared or slow machine)")
    p.add_argument("--parts", default="predict,train,det", help="what to measure: predict, train, det (int8 "
                   "batch independence)")
    p.add_argument("--runs", type=int, default=None, help="prediction rounds (default: 3, or 1 with --quick)")
    p.add_argument("--train_runs", type=int, default=None, help="training rounds (default: as --runs)")
    p.add_argument("--cases", default="long,short")
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    runs = a.runs or (1 if a.quick or a.tiny or a.small else 3)
    workdir = a.workdir or tempfile.mkdtemp(prefix="m3cls-bench-")
    os.makedirs(workdir, exist_ok=True)
    sizes = SIZES["tiny" if a.tiny else "small" if a.small else "quick" if a.quick else "full"]
    peak = measure_peak()
    print(f"peak (benchmarks/peak.py): {json.dumps(peak)}; workdir {workdir}", flush=True)
    results = {"peak": peak, "runs": runs, "command": " ".join(sys.argv)}
    for name in a.cases.split(","):
        results[name] = bench_case(name, sizes[name], runs, a.train_runs or runs, workdir, set(a.parts.split(",")))
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    results["peak_after"] = measure_peak()
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    speed_report.report(results)


if __name__ == "__main__":
    main()

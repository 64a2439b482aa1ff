"""The CUDA paths with a model of BGE-M3's shape: training and prediction at 512 and 8192 tokens, fp16 and bf16.

The model is XLM-RoBERTa-large shaped (24 layers, hidden 1024, 16 heads, vocabulary 250,002, 8,194 positions)
and randomly initialised, so no download is needed; the tokenizer is a word-level one built on the fly over
synthetic words, so every text is exactly as long as asked. Training runs through ``m3cls train`` (the Trainer
with m3cls' precision handling; ``--gradient_checkpointing`` at 8192) and prediction through
``Classifier.predict``, each measure in its own process so its peak GPU memory is its own. Prints samples/s,
texts/s and peak GPU memory (``torch.cuda.max_memory_allocated``) and writes ``results.json`` in the workdir.

    python benchmarks/gpu.py                        # on a CUDA machine (a few minutes on one H100/H200)
    python benchmarks/gpu.py --tiny --device cpu    # a small model on the CPU: checks the script itself
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)
WORDS = [f"w{i}" for i in range(4000)]
SHAPES = {
    "bge-m3": dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, max_position_embeddings=8194),
    "tiny": dict(vocab_size=len(WORDS) + 4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, max_position_embeddings=8194),
}
# per length: training batch size, training steps, prediction batch size, texts to predict
PLAN = {512: (16, 12, 64, 512), 8192: (1, 12, 4, 32)}


def plan(length: int) -> tuple[int, int, int, int]:
    """The PLAN row for a length; other lengths (e.g. with --lengths for a quick check) get a small one."""
    return PLAN.get(length, (2, 3, 4, 8))


def build_model(folder: str, shape: str) -> str:
    """A randomly initialised XLM-RoBERTa classifier and a word-level tokenizer, saved as an HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForSequenceClassification

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(specials + WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>", model_max_length=8192).save_pretrained(folder)
    torch.manual_seed(0)
    config = XLMRobertaConfig(**SHAPES[shape], type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              num_labels=2, id2label={0: "A", 1: "B"}, label2id={"A": 0, "B": 1})
    XLMRobertaForSequenceClassification(config).save_pretrained(folder)
    return folder


def write_texts(path: str, n: int, words: int, seed: int) -> str:
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"text": " ".join(rng.choices(WORDS, k=words)), "label": "AB"[i % 2]}) + "\n")
    return path


# -- workers (each in its own process) -------------------------------------------------------------------------
def worker_train(a) -> dict:
    import torch

    from m3cls.cli import main

    batch, steps, _, _ = plan(a.length)
    out = tempfile.mkdtemp(prefix="m3cls-gpu-train-")
    flags = ["train", "--model_name_or_path", a.model, "--data_path", a.data, "--output_dir", out,
             "--overwrite_output_dir", "--max_length", str(a.length), "--precision", a.precision,
             "--per_device_train_batch_size", str(batch), "--max_steps", str(steps), "--learning_rate", "1e-5",
             "--eval_strategy", "no", "--save_strategy", "no", "--no_baseline", "--no_report",
             "--per_device_eval_batch_size", str(batch)]
    if a.length > 2048:
        flags.append("--gradient_checkpointing")
    if main(flags) != 0:
        raise SystemExit("m3cls train failed")
    meta = json.load(open(os.path.join(out, "m3cls.json")))
    return {"samples_per_s": meta["training"]["train_samples_per_second"], "batch": batch, "steps": steps,
            "precision": meta["precision"], "gradient_checkpointing": a.length > 2048,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None}


def worker_predict(a) -> dict:
    import torch

    from m3cls import Classifier

    _, _, batch, n = plan(a.length)
    texts = [json.loads(line)["text"] for line in open(a.data)][:n]
    clf = Classifier.from_pretrained(a.model, device=a.device, precision=a.precision, max_length=a.length,
                                     batch_size=batch)
    clf.predict(texts[:batch])  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    clf.predict(texts)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"texts_per_s": len(texts) / seconds, "texts": len(texts), "batch": batch,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None}


WORKERS = {"train": worker_train, "predict": worker_predict}


def run_worker(kind: str, **kwargs) -> dict:
    cmd = [sys.executable, HERE, "--worker", kind] + [f"--{k}={v}" for k, v in kwargs.items()]
    env = dict(os.environ, M3CLS_LOG_LEVEL="WARNING", TRANSFORMERS_VERBOSITY="error")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker")
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--length", type=int)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--lengths", default="512,8192")
    p.add_argument("--precisions", default="bf16,fp16")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model of width 64: checks the script")
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a)))
        return
    import torch

    work = a.workdir or tempfile.mkdtemp(prefix="m3cls-gpu-")
    os.makedirs(work, exist_ok=True)
    shape = "tiny" if a.tiny else "bge-m3"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"torch {torch.__version__}, {gpu}; model {shape} (random weights); workdir {work}", flush=True)
    model = build_model(os.path.join(work, f"model-{shape}"), shape)
    results = []
    for length in (int(x) for x in a.lengths.split(",")):
        data = write_texts(os.path.join(work, f"texts-{length}.jsonl"), 200 if length <= 1024 else 40, length, length)
        for precision in a.precisions.split(","):
            common = dict(model=model, data=data, length=length, precision=precision, device=a.device)
            row = {"length": length, "precision": precision, "train": run_worker("train", **common),
                   "predict": run_worker("predict", **common)}
            results.append(row)
            print(format_row(row), flush=True)
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"device": gpu, "shape": SHAPES[shape], "results": results}, f, indent=2)


def format_row(row: dict) -> str:
    t, p = row["train"], row["predict"]

    def mem(r):
        return f"{r['peak_gpu_mb']:,.0f} MB" if r.get("peak_gpu_mb") is not None else "n/a"

    train = f"error: {t['error']}" if "error" in t else (
        f"{t['samples_per_s']:.2f} samples/s (batch {t['batch']}{', grad ckpt' if t['gradient_checkpointing'] else ''},"
        f" peak {mem(t)})")
    predict = f"error: {p['error']}" if "error" in p else (
        f"{p['texts_per_s']:.2f} texts/s (batch {p['batch']}, peak {mem(p)})")
    return f"{row['length']:>5} tokens {row['precision']}: train {train}; predict {predict}"


if __name__ == "__main__":
    main()

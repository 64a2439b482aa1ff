"""Where the time goes: torch.profiler over m3cls' prediction batches or training steps at 512 tokens.

The bundled MiniLM (with a fresh 5-label head: speed does not depend on the weights) runs BBC articles cut at
``--max_length``, sorted by length as m3cls batches them. Self CPU time is grouped by kind of operator:
matrix products, fused attention, layer norm, GELU, other element-wise work, dtype casts and copies, the
optimizer, and the rest. Prints the table and achieved model TFLOP/s (the arithmetic is in
``benchmarks/flops.py``; compare it with ``benchmarks/peak.py``).

    python benchmarks/profile_steps.py --mode predict                         # m3cls' default path
    python benchmarks/profile_steps.py --mode predict --weights autocast --no_first_token
    python benchmarks/profile_steps.py --mode train                           # bf16 autocast, attention dropout 0
    python benchmarks/profile_steps.py --mode levers --rounds 3   # prediction levers timed side by side
    python benchmarks/profile_steps.py --mode train_levers --rounds 3   # training levers timed side by side
    python benchmarks/profile_steps.py --model bge_m3 --mode embedding_ab --texts 16 --batch 4 --rounds 3

``--model bge_m3`` runs the same on a random model of BGE-M3's shape (``benchmarks/bge_m3.py`` builds it once in
the temporary folder), for example ``--model bge_m3 --mode train --texts 8 --batch 4``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flops import bert_shape, forward_flops  # noqa: E402

GROUPS = [
    ("matrix products", ("addmm", "mm", "bmm", "linear", "matmul", "baddbmm", "_int_mm")),
    ("attention (SDPA)", ("scaled_dot_product", "flash_attention", "_efficient_attention")),
    ("layer norm", ("layer_norm", "native_layer_norm")),
    ("GELU", ("gelu",)),
    ("casts and copies", ("copy_", "_to_copy", "to", "clone", "contiguous", "cat", "index_select", "embedding")),
    ("optimizer", ("_foreach", "adam", "lerp", "addcmul", "addcdiv", "sqrt")),
    ("element-wise", ("add", "mul", "div", "sub", "tanh", "dropout", "bernoulli", "where", "masked_fill", "sum",
                      "fill_", "zero_", "softmax", "_log_softmax", "nll_loss", "ne", "eq")),
]


def group_of(name: str) -> str:
    op = name.split("::")[-1].lstrip("_") if "::" in name else name
    for group, keys in GROUPS:
        if any(op == k.lstrip("_") or op.startswith(k.lstrip("_")) for k in keys):
            return group
    return "other"


def batches(tokenizer, n_texts: int, batch: int, max_length: int) -> list[list[list[int]]]:
    from m3cls.data.demo import bbc_news

    texts = [t for t, _ in bbc_news()[: n_texts * 7: 7]][:n_texts]
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    ids.sort(key=len, reverse=True)
    return [ids[i: i + batch] for i in range(0, len(ids), batch)]


def pad(batch: list[list[int]]):
    import numpy as np

    longest = max(len(x) for x in batch)
    input_ids = np.zeros((len(batch), longest), dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for row, x in enumerate(batch):
        input_ids[row, : len(x)], mask[row, : len(x)] = x, 1
    return input_ids, mask


def profile(step, work: list, rounds: int, top: int = 0) -> tuple[dict, float]:
    """Self CPU seconds per group and wall seconds over ``rounds`` passes of ``step`` over ``work``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step(work[0])  # warm-up
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            for item in work:
                step(item)
    wall = time.perf_counter() - start
    groups: dict[str, float] = defaultdict(float)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    for event in events:
        groups[group_of(event.key)] += event.self_cpu_time_total / 1e6
    total = sum(groups.values())
    for event in events[:top]:
        print(f"    {event.key:<48} {event.self_cpu_time_total / 1e6:7.2f} s  {event.count:6d} calls  "
              f"{100 * event.self_cpu_time_total / 1e6 / total:5.1f}%  -> {group_of(event.key)}")
    return dict(groups), wall


def levers(model, work: list, rounds: int, flops: float) -> None:
    """Each prediction lever on the same batches, variants interleaved round after round; medians of walls.

    Labels and logits are compared with the fp32 model (the same weights, no lever).
    """
    import copy
    import statistics

    import numpy as np
    import torch

    from m3cls.model.backends import TorchBackend

    cpu = torch.device("cpu")
    variants = {"fp32": ("fp32", "autocast", False), "bf16 autocast": ("bf16", "autocast", False),
                "bf16 autocast + first token": ("bf16", "autocast", True),
                "bf16 weights": ("bf16", "bf16", False), "bf16 weights + first token": ("bf16", "bf16", True)}
    backends = {name: TorchBackend(copy.deepcopy(model), cpu, p, weights=w, first_token=f)
                for name, (p, w, f) in variants.items()}
    inputs = [pad(b) for b in work]
    logits = {name: np.concatenate([b(*x) for x in inputs]) for name, b in backends.items()}  # also warms up
    walls: dict[str, list] = {name: [] for name in backends}
    for _ in range(rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            for x in inputs:
                backend(*x)
            walls[name].append(time.perf_counter() - start)
    texts = sum(len(b) for b in work)
    print(f"{texts} texts, median of {rounds} interleaved rounds, {torch.get_num_threads()} threads")
    print("| variant | texts/s | model TFLOP/s | vs bf16 autocast | labels as fp32 | largest logit change |")
    print("|---|---|---|---|---|---|")
    base = statistics.median(walls["bf16 autocast"])
    for name, wall in walls.items():
        median = statistics.median(wall)
        same = (logits[name].argmax(1) == logits["fp32"].argmax(1)).mean()
        print(f"| {name} | {texts / median:.2f} | {flops / median / 1e12:.3f} | {base / median:.2f}x | "
              f"{100 * same:.1f}% | {np.abs(logits[name] - logits['fp32']).max():.4f} |")


def train_step(model, optimizer):
    """One optimizer step as m3cls' Trainer runs it on a CPU with fast bf16: autocast, backward, fused AdamW."""
    import torch

    def step(b):
        ids, mask = (torch.from_numpy(x) for x in pad(b))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=mask, labels=torch.zeros(len(b), dtype=torch.long)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return float(loss.detach())

    return step


def train_levers(model, work: list, rounds: int, flops: float) -> None:
    """Training levers on the same batches, variants interleaved round after round; medians of step walls.

    One model, one optimizer: a lever is a change of the dropout probabilities in place (they are read at every
    forward pass), so every variant runs the same weights' shapes and the same kernels otherwise.
    """
    import statistics

    import torch

    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    hidden = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and "attention.self" not in name]
    attention = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and "attention.self" in name]
    original = {id(m): m.p for m in dropouts}
    attention_p = 0.1  # BGE-M3's and MiniLM's own attention_probs_dropout_prob
    if not attention:
        raise SystemExit("no attention dropout module named *.attention.self.*: not a BERT-family model")

    from m3cls.training.levers import keep_embedding_gradient

    keep_embedding_gradient(model)  # once: its buffer lives for the run, as in m3cls' training
    embedding = model.get_input_embeddings()

    def setting(hidden_p, attention_p, kept=False):
        def apply():
            embedding.sparse = kept  # dense backward when off: the lever's hook then does nothing
            for m in hidden:
                m.p = original[id(m)] if hidden_p is None else hidden_p
            for m in attention:  # the attention reads its probability from this module at every pass
                m.p = attention_p
        return apply

    variants = {"dense embedding gradient (hidden dropout 0.1, attention dropout 0)": setting(None, 0.0),
                "m3cls now: + the word-embedding gradient kept (m3cls.training.levers)": setting(None, 0.0, True),
                "hidden dropout 0 (no masks at all)": setting(0.0, 0.0),
                "attention dropout 0.1 (the model's own)": setting(None, attention_p)}
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    step = train_step(model, optimizer)
    for apply in variants.values():
        apply()
        step(work[0])  # warm-up: every variant's kernels once, and AdamW's states exist
    walls: dict[str, list] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, apply in variants.items():
            apply()
            start = time.perf_counter()
            for b in work:
                step(b)
            walls[name].append(time.perf_counter() - start)
    texts = sum(len(b) for b in work)
    print(f"{texts} texts in {len(work)} steps, median of {rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads")
    print("| variant | samples/s | model TFLOP/s | vs the first row |")
    print("|---|---|---|---|")
    base = statistics.median(next(iter(walls.values())))
    for name, wall in walls.items():
        median = statistics.median(wall)
        print(f"| {name} | {texts / median:.3f} | {flops / median / 1e12:.3f} | {base / median:.2f}x |")
    print(json.dumps({"mode": "train_levers", "walls": walls, "texts": texts, "gflop_per_round": flops / 1e9}))


def embedding_ab(model, work: list, rounds: int) -> None:
    """The kept word-embedding gradient alone: rounds of all ``work`` alternate lever off and on (m3cls' attention
    dropout 0, hidden dropout as the model has it); one model, one optimizer, the lever's buffer kept."""
    import statistics

    import torch

    from m3cls.training.levers import keep_embedding_gradient

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    step = train_step(model, optimizer)
    if keep_embedding_gradient(model) is None:
        raise SystemExit("the lever does not apply to this model (vocabulary below m3cls.training.levers.MIN_ROWS)")
    embedding = model.get_input_embeddings()
    for sparse in (True, False):
        embedding.sparse = sparse
        step(work[0])  # warm-up both ways; AdamW's states exist
    walls: dict[bool, list] = {False: [], True: []}
    for _ in range(rounds):
        for sparse in (False, True):
            embedding.sparse = sparse
            start = time.perf_counter()
            for b in work:
                step(b)
            walls[sparse].append(time.perf_counter() - start)
    texts = sum(len(b) for b in work)
    for sparse, wall in walls.items():
        print(f"{'kept embedding gradient' if sparse else 'dense embedding gradient'}: "
              f"{texts / statistics.median(wall):.3f} samples/s, walls {[round(x, 2) for x in wall]}")
    print(json.dumps({"mode": "embedding_ab", "texts": texts, "walls": {str(k): v for k, v in walls.items()}}))


def main() -> None:
    p = argparse.ArgumentParser(description="Profile m3cls prediction or training at 512 tokens.")
    p.add_argument("--mode", choices=("predict", "train", "levers", "train_levers", "embedding_ab"),
                   default="predict")
    p.add_argument("--model", default="bundled", help="'bundled', 'bge_m3' (random, BGE-M3's shape) or a folder")
    p.add_argument("--weights", choices=("bf16", "autocast"), default="bf16", help="predict: bf16 weights or autocast")
    p.add_argument("--no_first_token", action="store_true", help="predict: run the whole last layer")
    p.add_argument("--texts", type=int, default=32)
    p.add_argument("--batch", type=int, default=None, help="default: 32 to predict, 16 to train")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--max_length", type=int, default=512)
    p.add_argument("--top", type=int, default=12, help="also list the N operators with the most self time")
    a = p.parse_args()
    import torch

    from m3cls.model.loading import load_model, load_tokenizer

    if a.model == "bge_m3":
        import tempfile

        from bge_m3 import build_model

        a.model = build_model(os.path.join(tempfile.gettempdir(), "m3cls-bge-m3", "model"))
    tokenizer = load_tokenizer("bundled")
    overrides = {"attention_probs_dropout_prob": 0.0} if a.mode in ("train", "embedding_ab") else {}
    model = load_model(a.model, 5, {i: f"t{i}" for i in range(5)}, overrides)
    training = a.mode in ("train", "train_levers", "embedding_ab")
    work = batches(tokenizer, a.texts, a.batch or (16 if training else 32), a.max_length)
    shape = bert_shape(model.config)
    tokens = [len(x) for b in work for x in b]
    flops = sum(forward_flops(n, shape) for n in tokens) * (3 if training else 1) * a.rounds
    if a.mode == "train_levers":
        return train_levers(model, work, a.rounds, flops / a.rounds)
    if a.mode == "embedding_ab":
        return embedding_ab(model, work, a.rounds)
    if a.mode == "levers":
        return levers(model, work, a.rounds, flops / a.rounds)
    if a.mode == "predict":
        from m3cls.model.backends import TorchBackend

        backend = TorchBackend(model, torch.device("cpu"), "bf16", weights=a.weights,
                               first_token=not a.no_first_token)
        groups, wall = profile(lambda b: backend(*pad(b)), work, a.rounds, a.top)
        what = f"predict, weights {a.weights}, first token only {backend.first_token}"
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # as the Trainer runs it
        groups, wall = profile(train_step(model, optimizer), work, a.rounds, a.top)
        what = "train step, bf16 autocast, attention dropout 0"
    total = sum(groups.values())
    print(f"{what}; {len(tokens)} texts x {a.rounds}, {sum(tokens) / len(tokens):.0f} tokens on average, "
          f"{torch.get_num_threads()} threads")
    for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<18} {seconds:8.2f} s  {100 * seconds / total:5.1f}%")
    print(f"  wall {wall:.2f} s (with the profiler on); model {flops / 1e9:.0f} GFLOP -> "
          f"{flops / wall / 1e12:.3f} TFLOP/s")
    print(json.dumps({"mode": a.mode, "what": what, "wall_s": wall, "gflop": flops / 1e9,
                      "shares": {k: v / total for k, v in groups.items()}}))


if __name__ == "__main__":
    main()

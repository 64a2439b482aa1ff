"""Load test of `m3cls serve` on loopback.

``--mode budget`` (default): 32 clients send a mix of short texts (BBC News sentences) and long ones (whole BBC
articles, cut to the model's max_length), one text per request, against one server per setting: a fixed batch
size (``--max_batch_tokens 0``: batches of ``--batch_size`` texts in arrival order) and each token budget in
``--budgets`` (length-bucketed batches). It prints requests/s, texts/s, p50/p95/p99 latency (all requests, and
p50/p99 of the short ones), and from the server's /metrics the batches run and the share of padding.

``--mode micro_batching``: requests/s and p50/p95/p99 at concurrency 1, 8 and 32 with micro-batching and without
it (one request, one batch), then a soak: 32 clients for ``--soak`` seconds, no errors allowed.

Bounded: each phase stops after --seconds or --max_requests, and only 127.0.0.1 is contacted.

    python benchmarks/load.py --model_path demo/model [--seconds 20] [--budgets 0,2048,4096,8192]
    python benchmarks/load.py --model_path demo/model --mode micro_batching [--seconds 15] [--soak 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, *flags: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "m3cls", "serve", "--model_path", model, "--port", str(port), *flags]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, M3CLS_LOG_LEVEL="WARNING"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of sorted values, in milliseconds."""
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def run_phase(url: str, pools: dict[str, list[str]], weights: dict[str, float], concurrency: int, seconds: float,
              max_requests: int) -> dict:
    """Clients send one text per request, drawn from ``pools`` with ``weights``, until time or count runs out."""
    latencies: dict[str, list[float]] = {kind: [] for kind in pools}
    errors, lock, sent = [], threading.Lock(), [0]
    stop_at = time.perf_counter() + seconds
    kinds, shares = list(weights), list(weights.values())

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=120) as session:
            while time.perf_counter() < stop_at:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                kind = rng.choices(kinds, shares)[0]
                start = time.perf_counter()
                try:
                    r = session.post(f"{url}/predict", json={"texts": [rng.choice(pools[kind])]})
                    problem = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:100]}"
                except httpx.HTTPError as e:
                    problem = repr(e)
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies[kind].append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    every = sorted(x for values in latencies.values() for x in values)
    out = {"concurrency": concurrency, "wall_s": wall, "requests": len(every), "errors": len(errors),
           "first_errors": errors[:3],
           "requests_per_s": len(every) / wall, "p50_ms": percentile(every, 0.5),
           "p95_ms": percentile(every, 0.95), "p99_ms": percentile(every, 0.99)}
    for kind, values in latencies.items():
        values.sort()
        out[f"{kind}_requests"] = len(values)
        out[f"{kind}_p50_ms"], out[f"{kind}_p99_ms"] = percentile(values, 0.5), percentile(values, 0.99)
    return out


def server_counters(url: str) -> dict:
    """Batches, texts and tokens from the server's /metrics."""
    wanted = {"m3cls_batch_size_texts_count": "batches", "m3cls_texts_total": "texts",
              "m3cls_tokens_total": "tokens", "m3cls_padded_tokens_total": "padded_tokens"}
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


def bbc_pools(max_chars: int = 20_000) -> dict[str, list[str]]:
    from m3cls.data.demo import bbc_news

    articles = [text for text, _ in bbc_news()[:400]]
    short = [s for text in articles for s in text.split(". ") if 6 <= len(s.split()) <= 40]
    return {"short": short, "long": [text[:max_chars] for text in articles if len(text.split()) >= 300]}


def budget_mode(a) -> None:
    pools = bbc_pools()
    weights = {"short": 1 - a.long_share, "long": a.long_share}
    print(f"{a.concurrency} clients, {a.seconds:.0f} s per setting, {a.long_share:.0%} long texts "
          f"({len(pools['short'])} short sentences, {len(pools['long'])} long articles), --batch_size {a.batch_size}")
    print("| setting | req/s | texts/s | p50 ms | p95 ms | p99 ms | short p50 / p99 ms | batches | texts/batch | "
          "padding | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for budget in [int(b) for b in a.budgets.split(",")]:
        process, url = start_server(a.model_path, "--batch_size", str(a.batch_size), "--max_batch_tokens",
                                    str(budget), "--max_wait_ms", str(a.max_wait_ms))
        try:
            r = run_phase(url, pools, weights, a.concurrency, a.seconds, a.max_requests)
            c = server_counters(url)
        finally:
            stop_server(process)
        name = "fixed batch size" if budget == 0 else f"max_batch_tokens {budget}"
        padding = 1 - c["tokens"] / c["padded_tokens"] if c.get("padded_tokens") else float("nan")
        print(f"| {name} | {r['requests_per_s']:.1f} | {c['texts'] / r['wall_s']:.1f} | {r['p50_ms']:.0f} | "
              f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['short_p50_ms']:.0f} / {r['short_p99_ms']:.0f} | "
              f"{c['batches']:.0f} | {c['texts'] / max(1, c['batches']):.1f} | {padding:.0%} | {r['errors']} |",
              flush=True)
        if r["errors"]:
            print(f"  first errors: {r['first_errors']}", flush=True)


def micro_batching_mode(a) -> None:
    if a.texts:
        with open(a.texts, encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
    else:
        texts = bbc_pools()["short"]
    pools, weights, results = {"text": texts}, {"text": 1.0}, []
    for batching in (True, False):
        flags = ["--batch_size", str(a.batch_size), "--max_wait_ms", str(a.max_wait_ms)]
        process, url = start_server(a.model_path, *flags, *([] if batching else ["--no_micro_batching"]))
        try:
            for concurrency in (1, 8, 32):
                r = run_phase(url, pools, weights, concurrency, a.seconds, a.max_requests)
                r["micro_batching"] = batching
                results.append(r)
                print(f"micro-batching {'on ' if batching else 'off'} concurrency {concurrency:>2}: "
                      f"{r['requests_per_s']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
                      f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}", flush=True)
            if batching and a.soak:
                r = run_phase(url, pools, weights, 32, a.soak, 10**9)
                c = server_counters(url)
                print(f"soak: 32 clients for {a.soak:.0f} s: {r['requests']} requests, {r['errors']} errors, "
                      f"{r['requests_per_s']:.1f} req/s, p99 {r['p99_ms']:.1f} ms; server: {c['batches']:.0f} "
                      f"batches, {c['texts'] / max(1, c['batches']):.1f} texts per batch", flush=True)
        finally:
            stop_server(process)
    on = {r["concurrency"]: r for r in results if r["micro_batching"]}
    off = {r["concurrency"]: r for r in results if not r["micro_batching"]}
    for c in (8, 32):
        print(f"micro-batching gain at concurrency {c}: {on[c]['requests_per_s'] / off[c]['requests_per_s']:.2f}x "
              f"requests/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_path", required=True)
    p.add_argument("--mode", choices=("budget", "micro_batching"), default="budget")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--max_requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=32, help="clients in budget mode")
    p.add_argument("--budgets", default="0,2048,4096,8192", help="--max_batch_tokens values; 0: fixed batch size")
    p.add_argument("--long_share", type=float, default=0.2, help="share of requests with a long text")
    p.add_argument("--texts", help="micro_batching mode: JSONL with a 'text' field (default: BBC sentences)")
    p.add_argument("--soak", type=float, default=60, help="micro_batching mode: seconds of 32 clients (0: skip)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_wait_ms", type=float, default=0.0)
    a = p.parse_args()
    if a.mode == "budget":
        budget_mode(a)
    else:
        micro_batching_mode(a)


if __name__ == "__main__":
    main()

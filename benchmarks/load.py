"""Load test of `m3cls serve` on loopback: requests/s and p50/p99 latency at concurrency 1, 8 and 32, with
micro-batching and without it (one request, one batch), then a soak: 32 clients for a minute, no errors allowed.

Bounded: each phase stops after --seconds or --max_requests, and only 127.0.0.1 is contacted.

    python benchmarks/load.py --model_path demo/model [--seconds 15] [--soak 60]
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


def start_server(model: str, micro_batching: bool, batch_size: int, max_wait_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "m3cls", "serve", "--model_path", model, "--port", str(port), "--batch_size",
           str(batch_size), "--max_wait_ms", str(max_wait_ms)] + ([] if micro_batching else ["--no_micro_batching"])
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, M3CLS_LOG_LEVEL="WARNING"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def run_phase(url: str, texts: list[str], concurrency: int, seconds: float, max_requests: int) -> dict:
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds
    sent = [0]

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=60) as session:
            while time.perf_counter() < stop_at:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                start = time.perf_counter()
                try:
                    r = session.post(f"{url}/predict", json={"texts": [rng.choice(texts)]})
                    ok = r.status_code == 200
                except httpx.HTTPError as e:
                    ok, r = False, e
                with lock:
                    (latencies if ok else errors).append(time.perf_counter() - start if ok else str(r))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    latencies.sort()
    def pick(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
    return {"concurrency": concurrency, "requests": len(latencies), "errors": len(errors),
            "requests_per_s": len(latencies) / wall, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "first_errors": errors[:3]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_path", required=True)
    p.add_argument("--texts", help="JSONL with a 'text' field (default: BBC News sentences)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--max_requests", type=int, default=20000)
    p.add_argument("--soak", type=float, default=60, help="seconds of 32 clients at the end (0: skip)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_wait_ms", type=float, default=0.0)
    a = p.parse_args()
    if a.texts:
        texts = [json.loads(line)["text"] for line in open(a.texts)]
    else:
        from m3cls.demo import bbc_news

        texts = [s for text, _ in bbc_news()[:300] for s in text.split(". ") if 6 <= len(s.split()) <= 40]
    results = []
    for batching in (True, False):
        process, url = start_server(a.model_path, batching, a.batch_size, a.max_wait_ms)
        try:
            for concurrency in (1, 8, 32):
                r = run_phase(url, texts, concurrency, a.seconds, a.max_requests)
                r["micro_batching"] = batching
                results.append(r)
                print(f"micro-batching {'on ' if batching else 'off'} concurrency {concurrency:>2}: "
                      f"{r['requests_per_s']:7.1f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                      f"errors {r['errors']}", flush=True)
            if batching and a.soak:
                r = run_phase(url, texts, 32, a.soak, 10**9)
                r["soak"], r["micro_batching"] = True, True
                results.append(r)
                print(f"soak: 32 clients for {a.soak:.0f} s: {r['requests']} requests, {r['errors']} errors, "
                      f"{r['requests_per_s']:.1f} req/s, p99 {r['p99_ms']:.1f} ms", flush=True)
                health = httpx.get(f"{url}/health").json()
                print(f"server counters: {health['requests']} requests in {health['batches']} batches "
                      f"({health['texts'] / max(1, health['batches']):.1f} texts per batch)", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    on = {r["concurrency"]: r for r in results if r["micro_batching"] and not r.get("soak")}
    off = {r["concurrency"]: r for r in results if not r["micro_batching"]}
    for c in (8, 32):
        print(f"micro-batching gain at concurrency {c}: {on[c]['requests_per_s'] / off[c]['requests_per_s']:.2f}x "
              f"requests/s")


if __name__ == "__main__":
    main()

"""This machine's matrix-product peaks: bf16, fp32 and int8 (VNNI), the ceiling every speed figure is held to.

Each figure is the median of ``--repeats`` timed products after ``--warmups`` untimed ones, at ``--size``
square (2048 by default), on all the threads torch uses. FLOPs count 2 per multiply-add (2 n^3 per product).

- ``bf16`` and ``fp32``: ``torch.matmul`` (oneDNN/MKL);
- ``int8 torch``: ``torch._int_mm`` (int8 x int8 -> int32; oneDNN uses AVX512-VNNI or AMX where present);
- ``int8 onnxruntime``: an ONNX ``MatMulInteger`` (uint8 x int8 -> int32), the kernel family that m3cls'
  int8 ONNX models run on (skipped when onnxruntime is not installed);
- ``ffn bf16``: a product of MiniLM's feed-forward shape (8192 tokens x 384 -> 1536), a realistic best case.

Run::

    python benchmarks/peak.py                 # table on stdout, then one JSON line
    python benchmarks/peak.py --json          # the JSON line only (what benchmarks/speed.py reads)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time


def _time(fn, warmups: int, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmups`` untimed ones."""
    for _ in range(warmups):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_peaks(n: int, warmups: int, repeats: int) -> dict:
    """TFLOP/s of bf16, fp32 and int8 products of n x n matrices, and of MiniLM's feed-forward shape."""
    import torch

    torch.manual_seed(0)
    flops = 2 * n ** 3
    out = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out[name] = flops / _time(lambda: torch.matmul(a, b), warmups, repeats) / 1e12
    a8 = torch.randint(-128, 128, (n, n), dtype=torch.int8)
    b8 = torch.randint(-128, 128, (n, n), dtype=torch.int8)
    out["int8 torch"] = flops / _time(lambda: torch._int_mm(a8, b8), warmups, repeats) / 1e12
    x = torch.randn(8192, 384, dtype=torch.bfloat16)
    w = torch.randn(1536, 384, dtype=torch.bfloat16)
    out["ffn bf16"] = 2 * 8192 * 384 * 1536 / _time(lambda: torch.nn.functional.linear(x, w), warmups,
                                                    repeats) / 1e12
    return out


def onnxruntime_int8_peak(n: int, warmups: int, repeats: int, threads: int) -> float | None:
    """TFLOP/s of onnxruntime's MatMulInteger (uint8 x int8), or None without onnxruntime."""
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    b = rng.integers(-128, 128, (n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        initializer=[helper.make_tensor("b", TensorProto.INT8, [n, n], b.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "peak.onnx")
        onnx.save(model, path)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    return 2 * n ** 3 / _time(lambda: session.run(None, {"a": a}), warmups, repeats) / 1e12


def cpu_name() -> str:
    """The CPU model and the matrix extensions it has (AMX, AVX512-BF16, AVX512-VNNI)."""
    name, flags = platform.processor() or "unknown CPU", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
        name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                    name)
        present = set(next((line for line in info.splitlines() if line.startswith("flags")), "").split())
        flags = [f for f in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni") if f in present]
    except OSError:
        pass
    return f"{name} ({', '.join(flags) or 'no bf16/int8 matrix extensions'})"


def measure(n: int = 2048, warmups: int = 3, repeats: int = 20) -> dict:
    """All peaks in TFLOP/s, with what they were measured on."""
    import torch

    threads = torch.get_num_threads()
    peaks = torch_peaks(n, warmups, repeats)
    ort_int8 = onnxruntime_int8_peak(n, warmups, repeats, threads)
    if ort_int8 is not None:
        peaks["int8 onnxruntime"] = ort_int8
    return {"size": n, "warmups": warmups, "repeats": repeats, "threads": threads, "cpu": cpu_name(),
            "torch": torch.__version__, "tflops": {k: round(v, 4) for k, v in peaks.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description="Matrix-product peaks of this machine (TFLOP/s).")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--warmups", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    a = p.parse_args()
    result = measure(a.size, a.warmups, a.repeats)
    if not a.json:
        print(f"{result['cpu']}, {result['threads']} threads, torch {result['torch']}; {a.size}x{a.size}, median "
              f"of {a.repeats} after {a.warmups} warm-ups")
        bf16 = result["tflops"]["bf16"]
        for name, value in result["tflops"].items():
            print(f"  {name:<17} {value:7.3f} TFLOP/s   {value / bf16:5.2f}x bf16")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

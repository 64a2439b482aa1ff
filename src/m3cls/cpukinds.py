"""The CPU kind (AMX, AVX512-BF16, AVX512 without bf16, AVX2 only) and the paths ``auto`` takes on each.

Which path is fastest depends on the matrix units the CPU has (DESIGN.md, "Facts measured on these machines";
``docs/benchmarks/bge-m3.md``): a Xeon with AMX multiplies bf16 about 8x faster than fp32, an EPYC with
AVX512-BF16 about 2.2x, and a CPU without bf16 instructions emulates bf16 at fp32's speed or worse. Likewise
onnxruntime's int8 kernels for uint8 activations x int8 weights (u8s8) sum pairs of products in 16 bits on CPUs
without VNNI (``vpmaddubsw``) and can saturate there; its documentation recommends uint8 weights (u8u8) or a
reduced weight range on such CPUs. Everything here is decided from ``/proc/cpuinfo``'s flags, read once, so
tests can fake another kind by replacing :func:`cpu_flags`.

    >>> cpu_kind(frozenset({"avx2", "fma"}))
    'avx2'
    >>> int8_format(frozenset({"avx2", "fma"}))
    'u8u8'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

#: the kinds, fastest matrix units first; "basic" is anything without AVX2 (or a CPU whose flags cannot be read)
KINDS = ("amx", "avx512_bf16", "avx512", "avx2", "basic")

#: flags that give onnxruntime's u8s8 kernels 32-bit accumulation (no saturation)
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (empty when ``/proc/cpuinfo`` cannot be read, e.g. on macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """One of :data:`KINDS` for ``flags`` (default: this CPU's)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "basic"


def has_vnni(flags: frozenset[str] | None = None) -> bool:
    """True when int8 products accumulate in 32 bits (AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in VNNI_FLAGS)


def int8_format(flags: frozenset[str] | None = None) -> str:
    """onnxruntime int8 weight format accurate on this CPU: ``u8s8`` with VNNI, else ``u8u8`` (no saturation)."""
    return "u8s8" if has_vnni(flags) else "u8u8"


@dataclass(frozen=True)
class KindPaths:
    """What ``auto`` runs on one CPU kind, and where that choice comes from."""

    kind: str
    precision: str  # prediction and training under --precision auto: bf16 or fp32
    demo_epochs: str  # m3cls demo's --num_train_epochs (about 5 minutes in all on 2 cores)
    demo_max_length: int
    source: str


#: per kind: the fastest path that changes no label; the sources are named so a reader can check them
PATHS = {
    "amx": KindPaths("amx", "bf16", "2", 128,
                     "measured on a 2-core Xeon with AMX (docs/benchmarks/bge-m3.md)"),
    "avx512_bf16": KindPaths("avx512_bf16", "bf16", "2", 128,
                             "DESIGN.md: bf16 0.40 vs fp32 0.18 TFLOP/s on an EPYC with AVX512-BF16; the demo "
                             "took 203 s of training there"),
    "avx512": KindPaths("avx512", "fp32", "1", 128,
                        "no bf16 instructions: bf16 is emulated, no faster than fp32 (not measured on this kind)"),
    "avx2": KindPaths("avx2", "fp32", "1", 128,
                      "issue 26: an AVX2-only EPYC ran the demo in fp32, about 10 minutes of training for 2 "
                      "epochs when quiet; one epoch reached 0.9865 validation accuracy (README, train.yaml)"),
    "basic": KindPaths("basic", "fp32", "1", 128, "no AVX2: fp32, the demo's short setting"),
}


def kind_paths(kind: str | None = None) -> KindPaths:
    """The paths for ``kind`` (default: this CPU's)."""
    return PATHS[kind or cpu_kind()]


def describe(flags: frozenset[str] | None = None) -> str:
    """One line for logs: the kind, bf16 and VNNI support, e.g. ``amx (bf16: yes, int8 VNNI: yes)``."""
    kind = cpu_kind(flags)
    fast = PATHS[kind].precision == "bf16"
    return f"{kind} (fast bf16: {'yes' if fast else 'no'}, int8 VNNI: {'yes' if has_vnni(flags) else 'no'})"

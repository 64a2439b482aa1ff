"""The memory plan: before any data is read, will this fine-tuning job fit, and if not, what makes it fit.

BGE-M3 (568M parameters) at the reference's settings (batch 16, accumulation 2, 512 tokens, AdamW) needs about
20 GiB on a CPU without help (issue 26), past a 24 GiB machine's comfort and far past it at 2,048 tokens. The
plan estimates the peak in bytes:

- weights (fp32 master copy, 4 bytes a parameter), their bf16/fp16 copies that autocast keeps for the
  forward pass (2 bytes per linear weight), gradients (4 bytes per trainable parameter) and AdamW's two
  moments (8 bytes);
- activations kept for the backward pass for the longest batch it can see (``per_device_train_batch_size``
  texts of ``max_length`` tokens): per layer and token ``40 h + 8 i`` bytes in fp32, ``29 h + 4 i`` under
  bf16/fp16 autocast (hidden size h, feed-forward size i; measured with ``saved_tensors_hooks`` on
  BGE-M3's layer shape, ``benchmarks/memory_plan.py``), plus ``b x heads x length^2 x 9`` bytes per layer where
  attention is not fused (attention dropout above 0); with gradient checkpointing only each layer's input
  (4 bytes x h per token) and one layer's activations at a time;
- the backward pass's largest temporaries (three feed-forward-sized tensors, and one copy of the largest
  parameter's gradient, made when a micro-batch's gradient is added to the accumulated one) and the process as it
  stands
  (Python, torch, the tokenizer: the resident memory measured when the plan runs, plus 0.5 GiB for the data).

Without gradient accumulation the gradients are freed after each step and grow while the backward pass
releases the activations, so only the larger of the two counts; with accumulation both are alive together.

It holds that against a budget: 70 % of the RAM on a CPU (of the cgroup's limit if lower), shared by the ranks
of a host under torchrun, or 85 % of the GPU's memory per rank. When the estimate is over the budget it turns
on gradient checkpointing, then halves the per-device batch and doubles gradient accumulation (the effective
batch stays) until it fits; when even one text with checkpointing does not fit it stops, suggesting LoRA or
the probe. ``--memory_plan off`` trusts the user.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

from ..errors import ConfigError

logger = logging.getLogger(__name__)

GIB = 2 ** 30
#: share of the machine's RAM (CPU) or of the GPU's memory a plan may use
CPU_BUDGET_SHARE = 0.70
GPU_BUDGET_SHARE = 0.85
#: the data, the tokenizer and allocator slack, beyond the process's resident memory when the plan runs
DATA_ALLOWANCE = GIB // 2
MEMORY_PLANS = ("auto", "off")


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a model: parameter counts and the encoder's layer shape."""

    params: int
    linear_params: int  # weights of Linear layers: the ones autocast copies to bf16/fp16
    layers: int
    hidden: int
    intermediate: int
    heads: int
    largest: int = 0  # elements of the largest parameter (the word embeddings): its gradient's temporary


@dataclass(frozen=True)
class Job:
    """One micro-batch setting of a training job, as the estimate sees it."""

    batch: int
    length: int
    precision: str  # fp32, bf16 or fp16 (autocast)
    checkpointing: bool
    trainable: int  # parameters with gradients and optimizer states
    fused_attention: bool = True
    runtime: int = 0  # bytes the process holds before the model is loaded
    accumulation: int = 1  # gradient accumulation steps: above 1, gradients live through the next forward pass
    kept_gradient: int = 0  # bytes of gradient kept between steps (m3cls.training.levers: the word embeddings')


def estimate(shape: ModelShape, job: Job) -> dict[str, int]:
    """Peak bytes by part (``total`` included) for ``job`` on a model of ``shape``.

    >>> s = ModelShape(10**6, 10**6, 2, 64, 256, 4)
    >>> estimate(s, Job(8, 128, "fp32", False, 10**6))["optimizer"]
    8000000
    """
    half = job.precision in ("bf16", "fp16")
    per_token = (29 * shape.hidden + 4 * shape.intermediate) if half else (40 * shape.hidden + 8 * shape.intermediate)
    tokens = job.batch * job.length
    layer = tokens * per_token
    if not job.fused_attention:
        layer += job.batch * shape.heads * job.length ** 2 * 9
    activations = shape.layers * tokens * shape.hidden * 4 + layer if job.checkpointing else shape.layers * layer
    accumulating = job.accumulation > 1
    parts = {"runtime": job.runtime, "weights": shape.params * 4, "autocast_copies": shape.linear_params * 2 * half,
             "gradients": job.trainable * 4, "optimizer": job.trainable * 8, "activations": activations,
             "temporaries": 3 * tokens * shape.intermediate * 4 + (shape.largest * 4 if accumulating else 0)}
    total = sum(parts.values())
    if not accumulating:  # gradients are freed after each step: they grow while the activations are released,
        # except a gradient kept for the run, which lives through the forward pass
        total -= min(parts["gradients"] - job.kept_gradient, parts["activations"])
    parts["total"] = total
    return parts


@dataclass
class MemoryPlan:
    """The plan's decision: settings to run with, the estimate before and after, and what changed."""

    budget: int
    device: str
    batch: int
    accumulation: int
    checkpointing: bool
    estimate: dict
    first_estimate: dict
    changes: list

    def info(self, measured_peak: int | None = None) -> dict:
        """What ``m3cls.json``'s ``info.memory_plan`` holds (GiB, two decimals)."""
        out = {"device": self.device, "budget_gib": _gib(self.budget), "estimate_gib": _gib(self.estimate["total"]),
               "estimate_parts_gib": {k: _gib(v) for k, v in self.estimate.items() if k != "total"},
               "first_estimate_gib": _gib(self.first_estimate["total"]), "changes": list(self.changes),
               "per_device_train_batch_size": self.batch, "gradient_accumulation_steps": self.accumulation,
               "gradient_checkpointing": self.checkpointing}
        if measured_peak is not None:
            out["measured_peak_gib"] = _gib(measured_peak)
        return out

    def line(self) -> str:
        """One log line with the numbers."""
        head = (f"memory plan: estimate {_gib(self.first_estimate['total'])} GiB against a budget of "
                f"{_gib(self.budget)} GiB ({self.device})")
        if not self.changes:
            return f"{head}: fits as given"
        return (f"{head}: {', '.join(self.changes)}; now {_gib(self.estimate['total'])} GiB "
                f"(--memory_plan off to run as typed)")


def decide(shape: ModelShape, job: Job, budget: int, device: str = "cpu") -> MemoryPlan:
    """The settings that fit ``budget``: as given, then with checkpointing, then smaller micro-batches.

    Raises ConfigError when one text per micro-batch with checkpointing does not fit.
    """
    first = estimate(shape, job)
    changes = []
    if first["total"] > budget and not job.checkpointing:
        job = replace(job, checkpointing=True)
        changes.append("gradient checkpointing on")
    accumulation = job.accumulation
    batch, steps = job.batch, accumulation
    for smaller in [d for d in range(job.batch, 0, -1) if job.batch % d == 0]:
        if estimate(shape, replace(job, batch=smaller, accumulation=accumulation * job.batch // smaller))["total"] \
                <= budget:
            batch, steps = smaller, accumulation * (job.batch // smaller)
            break
    else:
        raise ConfigError(
            f"memory plan: this job needs about {_gib(estimate(shape, replace(job, batch=1, accumulation=2))['total'])} GiB even "
            f"with one text per step and gradient checkpointing (weights, gradients and AdamW states alone "
            f"{_gib(4 * shape.params + 12 * job.trainable)} GiB), over the budget of {_gib(budget)} GiB ({device}); "
            f"train LoRA adapters (--lora_r 16), fit a probe on the frozen encoder (--method probe), shorten "
            f"--max_length, or pass --memory_plan off to try anyway")
    if batch != job.batch:
        changes.append(f"per-device batch {job.batch} -> {batch} with gradient accumulation {accumulation} -> "
                       f"{steps} (effective batch {job.batch * accumulation} kept)")
    final = estimate(shape, replace(job, batch=batch, accumulation=steps))
    return MemoryPlan(budget, device, batch, steps, job.checkpointing, final, first, changes)


def _gib(n: int) -> float:
    return round(n / GIB, 2)


def current_rss() -> int:
    """Resident bytes of this process now (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss() -> int:
    """Peak resident bytes of this process so far (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def device_budget(on_gpu: bool) -> tuple[int, str]:
    """Bytes this rank may use and a description: RAM (or the cgroup limit) on a CPU, the GPU's memory on a GPU.

    Under torchrun the ranks of one host share its RAM (``LOCAL_WORLD_SIZE``); on GPUs each has its own.
    """
    if on_gpu:
        import torch

        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        return int(total * GPU_BUDGET_SHARE), f"{GPU_BUDGET_SHARE:.0%} of {_gib(total)} GiB GPU memory"
    total = _ram_bytes()
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    shared = f", shared by {ranks} ranks" if ranks > 1 else ""
    return int(total * CPU_BUDGET_SHARE / ranks), f"{CPU_BUDGET_SHARE:.0%} of {_gib(total)} GiB RAM{shared}"


def _ram_bytes() -> int:
    """MemTotal, or the cgroup's memory limit where it is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as f:
                limit = f.read().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total


def model_shape(name: str, overrides: dict, trust_remote_code: bool = False, lora: bool = False) -> ModelShape | None:
    """The shape of ``name`` built on torch's meta device (no weights read); None for a layout not known here."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ..model.loading import _load_error, resolve_model_name

    try:
        config = AutoConfig.from_pretrained(resolve_model_name(name), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:  # the same one line as loading the model would give
        raise _load_error(name, e) from None
    sizes = [_first(config, names) for names in (("num_hidden_layers", "n_layers", "num_layers"),
                                                 ("hidden_size", "dim", "d_model"),
                                                 ("intermediate_size", "hidden_dim", "ffn_dim"),
                                                 ("num_attention_heads", "n_heads"))]
    if None in sizes:
        return None
    for key, value in overrides.items():
        setattr(config, key, value)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
    params = sum(p.numel() for p in model.parameters())
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    largest = max(p.numel() for p in model.parameters())
    return ModelShape(params, linear, *sizes, largest=largest if not lora else 0)


def _first(config, names: tuple[str, ...]) -> int | None:
    return next((int(getattr(config, n)) for n in names if isinstance(getattr(config, n, None), int)), None)


def kept_embedding_gradient(shape: ModelShape, values: dict, on_gpu: bool) -> int:
    """Bytes of the word embeddings' gradient :mod:`m3cls.training.levers` keeps for the run: where the lever
    applies (one CPU process, no ``--torch_compile``, a trainable vocabulary of at least ``MIN_ROWS`` rows)."""
    from .levers import MIN_ROWS

    one_cpu = not on_gpu and int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not values.get("torch_compile")
    return shape.largest * 4 if one_cpu and shape.largest >= MIN_ROWS * shape.hidden else 0


def plan_training_memory(config, values: dict, precision: str, on_gpu: bool) -> MemoryPlan | None:
    """Plan ``config``'s fine-tuning before its data is read; updates ``values`` (batch, accumulation,
    checkpointing) in place when the plan changes them. None when off, or for runs it cannot plan."""
    if config.memory_plan not in MEMORY_PLANS:
        raise ConfigError(f"--memory_plan {config.memory_plan!r} is not one of: {', '.join(MEMORY_PLANS)}")
    if config.memory_plan == "off":
        return None
    if values.get("deepspeed") or values.get("fsdp"):
        logger.info("memory plan: not made under DeepSpeed/FSDP, which shard the states themselves")
        return None
    shape = model_shape(config.model_name_or_path, config.model_overrides(), config.trust_remote_code,
                        bool(config.lora_r))
    if shape is None:
        logger.info("memory plan: not made, %s's config names no layer shape m3cls knows", config.model_name_or_path)
        return None
    trainable = shape.params
    if config.lora_r:  # adapters on the attention projections (PEFT's usual targets): small beside the rest
        trainable = shape.layers * 4 * config.lora_r * 2 * shape.hidden
    dropout = config.model_overrides().get("attention_probs_dropout_prob", 0.1)
    job = Job(int(values.get("per_device_train_batch_size") or 8), config.max_length,
              precision if precision in ("bf16", "fp16") else "fp32", bool(values.get("gradient_checkpointing")),
              trainable, fused_attention=dropout == 0, runtime=current_rss() + DATA_ALLOWANCE,
              accumulation=int(values.get("gradient_accumulation_steps") or 1),
              kept_gradient=kept_embedding_gradient(shape, values, on_gpu))
    budget, device = device_budget(on_gpu)
    plan = decide(shape, job, budget, device)
    # a plan that changes nothing is in m3cls.json and the end-of-training line; only a change is news up front
    logger.log(logging.INFO if plan.changes else logging.DEBUG, plan.line())
    if plan.changes:  # untouched otherwise, so train_config.yaml holds the run as given
        values.update(per_device_train_batch_size=plan.batch, gradient_accumulation_steps=plan.accumulation,
                      gradient_checkpointing=plan.checkpointing)
    return plan


def measured_peak(on_gpu: bool) -> int:
    """The peak the plan is checked against: the process's peak RSS on a CPU, allocated GPU memory on a GPU."""
    if on_gpu:
        import torch

        return int(torch.cuda.max_memory_allocated())
    return peak_rss()

"""The feed-forward block's first product and its GELU in one CPU kernel, for prediction.

A BERT-family layer's feed-forward block starts with ``gelu(x @ W1 + b1)``: a product to 4 x hidden and the exact
(erf) GELU over its output. Run apart in bf16, the GELU costs more than the product: on BGE-M3's shape (8 texts
of 414 tokens, 2 AMX cores) the product took 10.6 ms and product then GELU 27.8 ms; oneDNN's product with GELU
applied in its epilogue (``torch.ops.mkldnn._linear_pointwise``, the kernel torch's own compiler uses on CPUs)
took 11.4 ms. In fp32 it gave 84 against 92 ms. The fused kernel applies GELU to the product's fp32
accumulator and rounds once, so its result differs from the unfused bf16 one by at most a rounding step of bf16
(0.016 at 2.8), and from fp32 by float rounding (4e-6); tests/test_fused.py compares logits and labels.

Only where it applies: CPU tensors, no gradient wanted, weights and input in one dtype (not under autocast),
``intermediate_act_fn`` the exact GELU (``hidden_act="gelu"``: BERT, RoBERTa, XLM-RoBERTa, BGE-M3, MiniLM), and a
module that computes ``intermediate_act_fn(dense(x))`` and nothing more (not RoBERTa-PreLayerNorm's, which
normalizes first). Any other case runs the module's own forward.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def available() -> bool:
    """oneDNN's fused product is in this torch build."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _exact_gelu(act) -> bool:
    if isinstance(act, nn.GELU):
        return act.approximate == "none"
    return getattr(act, "act", None) is nn.functional.gelu  # transformers' GELUActivation for hidden_act="gelu"


#: what the module's own forward may touch: ``intermediate_act_fn(dense(x))`` and nothing else (RoBERTa-PreLayerNorm's
#: intermediate also has a LayerNorm before ``dense``, Timesformer's a dropout after the GELU)
_PLAIN_FORWARD = {"dense", "intermediate_act_fn"}


def _plain_feed_forward(module: nn.Module) -> bool:
    """``module`` is ``gelu(dense(x))`` exactly: only those two children, and a class forward that uses only them."""
    code = getattr(type(module).forward, "__code__", None)
    return code is not None and set(code.co_names) == _PLAIN_FORWARD \
        and {name for name, _ in module.named_children()} == _PLAIN_FORWARD


def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """The fused forward; the class's own forward (of this module, also in a deep copy) where it does not apply."""
    weight, bias = self.dense.weight, self.dense.bias
    if hidden_states.device.type != "cpu" or torch.is_grad_enabled() or hidden_states.dtype != weight.dtype:
        return type(self).forward(self, hidden_states)
    return torch.ops.mkldnn._linear_pointwise(hidden_states, weight, bias, "gelu", [], "none")


def fuse_feed_forward_gelu(model: nn.Module) -> int:
    """Give every feed-forward ``dense`` + exact GELU module of ``model`` the fused forward; returns how many."""
    if not available():
        return 0
    fused = 0
    for module in model.modules():
        dense = getattr(module, "dense", None)
        if isinstance(dense, nn.Linear) and _exact_gelu(getattr(module, "intermediate_act_fn", None)) \
                and _plain_feed_forward(module) and not getattr(module, "_m3cls_fused", False):
            module.forward = types.MethodType(forward, module)
            module._m3cls_fused = True
            fused += 1
    return fused


def linear_forward(self, x: torch.Tensor) -> torch.Tensor:
    """A plain ``nn.Linear`` through oneDNN's product with its bias in the epilogue; the class's own forward where
    that does not apply (as :func:`forward`)."""
    if x.device.type != "cpu" or torch.is_grad_enabled() or x.dtype != self.weight.dtype:
        return type(self).forward(self, x)
    return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


def fuse_linears(model: nn.Module) -> int:
    """Give every plain ``nn.Linear`` of ``model`` (not a subclass: quantized or adapter layers keep theirs) the
    oneDNN product with its bias fused; returns how many. Same values as ``F.linear`` (bf16: the same bits on
    BGE-M3's shape; fp32: float rounding), 1.05x the texts/s of BGE-M3's shape in bf16 on 2 AMX cores
    (docs/benchmarks/bge-m3.md)."""
    if not available():
        return 0
    fused = 0
    for module in model.modules():
        if type(module) is nn.Linear and not getattr(module, "_m3cls_fused", False):
            module.forward = types.MethodType(linear_forward, module)
            module._m3cls_fused = True
            fused += 1
    return fused

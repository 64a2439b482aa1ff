"""Model FLOPs of a BERT-family encoder: the arithmetic behind every "share of peak" figure.

Per token and layer, a forward pass does the four h x h attention projections (Q, K, V, output:
``8 h^2`` FLOPs, 2 per multiply-add) and the two feed-forward products (``4 h f``); per pair of tokens in a
sequence of n, attention scores and their weighted sum cost ``4 h`` per layer. So one text of n tokens costs

    forward(n) = L (8 h^2 + 4 h f) n + 4 L h n^2        (+ the classifier head, 2 h^2 + 2 h c, once)

and a training sample three times that (the backward pass does two products for each forward one). For the
bundled MiniLM-L6 (L 6, h 384, f 1536) that is 21.2 MFLOP per token plus 9.2 kFLOP per token per token of
context: 13.3 GFLOP for a full 512-token text. This is the usual "model FLOPs" count: it counts the work of the
whole model on the unpadded text, whatever an implementation skips or wastes (padding, or the last layer's
positions that m3cls does not compute, see ``m3cls.model.first_token``), so implementations compare on one scale.

    >>> shape = {"layers": 6, "hidden": 384, "ffn": 1536, "labels": 5}
    >>> round(forward_flops(512, shape) / 1e9, 1)
    13.3
"""

from __future__ import annotations


def bert_shape(config, labels: int | None = None) -> dict:
    """Layers, hidden width, feed-forward width and labels of a transformers config."""
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size, "ffn": config.intermediate_size,
            "labels": labels or getattr(config, "num_labels", 2)}


def forward_flops(n: int, shape: dict) -> float:
    """FLOPs of one forward pass over a text of ``n`` tokens (the formula in the module docstring)."""
    layers, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    return layers * (8 * h * h + 4 * h * f) * n + 4 * layers * h * n * n + 2 * h * h + 2 * h * shape["labels"]


def formula(shape: dict) -> str:
    """The formula with this model's numbers, for a report."""
    layers, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    per_token = layers * (8 * h * h + 4 * h * f)
    return (f"forward(n) = {per_token / 1e6:.1f} MFLOP x n + {4 * layers * h / 1e3:.1f} kFLOP x n^2 "
            f"(L {layers}, h {h}, f {f}: L(8h^2+4hf) per token, 4Lh per token pair); training x3")

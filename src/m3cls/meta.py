"""``m3cls.json``: what m3cls knows about a saved model beyond what transformers stores.

It holds max_length, the labels, the fitted temperature, a data summary and the final metrics. The model
folder stays a plain Hugging Face folder; this file only adds to it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .errors import ModelLoadError

META_FILE = "m3cls.json"


def read_meta(folder: str) -> dict[str, Any]:
    """Read ``m3cls.json`` from a model folder, or from the run folder above a ``checkpoint-N`` folder."""
    for candidate in (folder, os.path.dirname(os.path.abspath(folder))):
        path = os.path.join(candidate, META_FILE)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    return json.load(f)
            except (OSError, json.JSONDecodeError) as e:
                raise ModelLoadError(f"{path}: cannot read ({e}); delete it or retrain") from None
    return {}


def write_meta(folder: str, meta: dict[str, Any]) -> str:
    """Write ``m3cls.json`` through a temporary file, so a reader never sees half of it."""
    path = os.path.join(folder, META_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)
    return path

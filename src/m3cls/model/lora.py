"""LoRA through PEFT: wrap a classifier, save it with its label names, load it back for prediction and export.

The classification head is trained fully (PEFT's ``SEQ_CLS`` task puts it in ``modules_to_save``). A known
PEFT pitfall: an adapter folder holds no ``config.json``, so the label names are lost; m3cls writes the
classifier's config (with ``id2label``) beside the adapter, and loads the base model with it.
"""

from __future__ import annotations

import logging

from ..errors import ConfigError
from ..files import require

logger = logging.getLogger(__name__)


def _peft():
    return require("peft", "lora", "LoRA")


def wrap(model, r: int, alpha: int | None, dropout: float, target_modules: str | None):
    """Add LoRA adapters; returns the PEFT model and a summary (trainable share, optimizer memory saved)."""
    peft = _peft()
    total_before = sum(p.numel() for p in model.parameters())
    targets = [t.strip() for t in target_modules.split(",")] if target_modules else None
    config = peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=r, lora_alpha=alpha or 2 * r,
                             lora_dropout=dropout, target_modules=targets)
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as e:
        raise ConfigError(f"LoRA: {' '.join(str(e).split())[:200]}; set --lora_target_modules to the names of "
                          f"linear layers of this model (e.g. query,value)") from None
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    # fp32 gradients (4 bytes) + Adam moments (8 bytes) are needed only for trainable parameters
    saved_mb = (total_before - trainable) * 12 / 2**20
    summary = {"r": r, "alpha": alpha or 2 * r, "dropout": dropout, "target_modules": sorted(wrapped.peft_config[
        "default"].target_modules), "trainable_parameters": trainable, "total_parameters": total_before,
        "trainable_share": trainable / total_before, "optimizer_and_gradient_memory_saved_mb": round(saved_mb, 1)}
    logger.info("LoRA r=%d: %d of %d parameters trainable (%.2f%%); about %.0f MB less gradient and optimizer "
                "memory than full fine-tuning", r, trainable, total_before, 100 * trainable / total_before,
                saved_mb)
    return wrapped, summary


def is_peft_model(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save(model, folder: str, merge: bool) -> None:
    """Save a LoRA model: merged into a plain HF model, or as an adapter plus the labelled config."""
    if merge:
        model.merge_and_unload().save_pretrained(folder)
        return
    model.save_pretrained(folder)
    model.get_base_model().config.save_pretrained(folder)


def load_merged(folder: str, base: str, load_base):
    """Load base model + adapter from ``folder`` with the saved config (labels), merged for fast inference."""
    peft = _peft()
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    model = load_base(base, config)
    return peft.PeftModel.from_pretrained(model, folder).merge_and_unload()

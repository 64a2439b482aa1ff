"""The output folder: refused early when it cannot work, and filled by a staged, ordered final save."""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np

from ..contract import ModelContract, write_contract
from ..errors import ConfigError, OutputError
from ..files import atomic_open

logger = logging.getLogger(__name__)
VALIDATION_PREDICTIONS = "validation_predictions.jsonl"


def check_output_dir(path: str, overwrite: bool) -> None:
    """Refuse an output folder that cannot be written or would mix two runs, before any training."""
    if not path:
        raise ConfigError("--output_dir is required: the folder for the trained model")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: --output_dir exists and is a file; choose a folder path")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f"{path}: --output_dir exists and is not empty; choose a new folder, or pass "
                          f"--overwrite_output_dir to train into it")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent if not os.path.isdir(path) else path, os.W_OK):
        raise OutputError(f"{path}: --output_dir is not writable; choose a folder you can write to")


def write_validation_predictions(folder: str, probabilities: np.ndarray, y_true: np.ndarray,
                                 names: tuple[str, ...]) -> str:
    """Each validation text's probabilities under the saved temperature, in validation order."""
    path = os.path.join(folder, VALIDATION_PREDICTIONS)
    with atomic_open(path, "model folder") as f:
        for index, (row, truth) in enumerate(zip(probabilities, y_true)):
            f.write(json.dumps({"index": index, "label": names[int(truth)],
                                "probabilities": {n: float(p) for n, p in zip(names, row)}},
                               ensure_ascii=False) + "\n")
    return path


def write_validation_rows(folder: str, rows: list[dict]) -> str:
    """Validation predictions given as finished rows (``predict``'s fields plus the truth), in validation order."""
    path = os.path.join(folder, VALIDATION_PREDICTIONS)
    with atomic_open(path, "model folder") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def save_final(trainer, output_dir: str, contract: ModelContract, evaluation: dict | None = None,
               merge_lora: bool = False, validation: tuple | None = None) -> None:
    """Write weights, tokenizer, config, report and m3cls.json to a staging folder, then move them into place."""
    from .. import lora

    staging = os.path.join(output_dir, ".m3cls-final.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    if lora.is_peft_model(trainer.model):
        lora.save(trainer.model, staging, merge_lora)
        trainer.processing_class.save_pretrained(staging)
    else:
        trainer.save_model(staging)
    if evaluation is not None:
        from ..task_report import write_task_report

        write_task_report(os.path.join(staging, "report"), evaluation, contract.info.get("history"),
                          contract.info.get("baseline"),
                          title=f"m3cls: {contract.info.get('base_model')} on {contract.info['data']['train_path']}")
    if isinstance(validation, list):  # multi-label and regression: the rows as predict writes them
        write_validation_rows(staging, validation)
    elif validation is not None:
        write_validation_predictions(staging, *validation, contract.labels)
    write_contract(staging, contract)
    # weights after everything else, m3cls.json last: each move is atomic, and a reader never finds new
    # weights without their config and tokenizer, nor m3cls.json without the weights
    names = sorted(os.listdir(staging), key=lambda n: (n == "m3cls.json", n.endswith(".safetensors")))
    for name in names:
        target = os.path.join(output_dir, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(os.path.join(staging, name), target)
    os.rmdir(staging)
    logger.info("model saved to %s", output_dir)

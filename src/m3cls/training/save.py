"""The output folder: refused early when it cannot work, and filled by a staged, ordered final save."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile

import numpy as np

from ..errors import ConfigError, OutputError
from ..files import atomic_open, check_replaceable, replace_folder
from ..model.card import write_model_card
from ..model.contract import ModelContract, write_contract
from .runconfig import write_train_config

logger = logging.getLogger(__name__)
VALIDATION_PREDICTIONS = "validation_predictions.jsonl"
#: what a run leaves in its output folder: the final save of m3cls, transformers or PEFT (weights, adapter,
#: configs, tokenizer files, model card, report), ONNX exports, checkpoints. With --overwrite_output_dir an
#: earlier run's copies go, so a stale adapter or weights file never mixes with this run's model.
_RUN_OUTPUT = re.compile(
    r"m3cls\.json|config\.json|generation_config\.json|adapter_config\.json|training_args\.bin|README\.md"
    r"|validation_predictions\.jsonl|report|oof|.*\.safetensors(\.index\.json)?|pytorch_model.*\.bin(\.index\.json)?"
    r"|adapter_model\.bin|tokenizer(_config)?\.json|special_tokens_map\.json|added_tokens\.json|vocab\.(txt|json)"
    r"|merges\.txt|.*\.model|chat_template\.jinja|.*\.onnx(\.data)?|(all|train|eval)_results\.json"
    r"|checkpoint-[0-9]+|\.m3cls-final\.tmp")
_CHECKPOINT = re.compile(r"checkpoint-[0-9]+")
#: what marks a folder as an earlier m3cls run's (train, probe, cv, tune, audit): --overwrite_output_dir
#: replaces only such a folder
_RUN_MARKER = re.compile(r"m3cls\.json|checkpoint-[0-9]+|fold-[0-9]+|cv\.json|audit\.json|tuning|trials"
                         r"|\.m3cls-final.*\.tmp")
STAGING_PREFIX, STAGING_SUFFIX = ".m3cls-final.", ".tmp"


def check_output_dir(path: str, overwrite: bool, model_path: str | None = None, resuming: bool = False) -> None:
    """Refuse an output folder that cannot be written or would mix two runs, before any training.

    With ``overwrite`` (--overwrite_output_dir), also refuse what m3cls did not write: the current folder or
    one above it, the base model's folder (``model_path``) or one above it, a non-empty folder of no m3cls run.
    """
    if not path:
        raise ConfigError("--output_dir is required: the folder for the trained model")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: --output_dir exists and is a file; choose a folder path")
    if overwrite:
        check_replaceable(path, "--output_dir", "m3cls run (m3cls.json or checkpoint-N)", holds_run_output,
                          {"--model_name_or_path": model_path})
    overwrite = overwrite or resuming
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise OutputError(f"{path}: --output_dir exists and is not empty; choose a new folder, or pass "
                          f"--overwrite_output_dir to train into it")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent if not os.path.isdir(path) else path, os.W_OK):
        raise OutputError(f"{path}: --output_dir is not writable; choose a folder you can write to")


def holds_run_output(folder: str) -> bool:
    """True when ``folder`` holds what an earlier m3cls run wrote (its contract, checkpoints, folds, trials)."""
    return any(_RUN_MARKER.fullmatch(name) for name in os.listdir(folder))


def clear_earlier_checkpoints(output_dir: str) -> None:
    """Before a fresh run into a used folder (--overwrite_output_dir, no resume): drop the earlier run's
    ``checkpoint-N`` folders, which the Trainer would otherwise rotate with this run's, and which
    ``--resume_from_checkpoint auto`` or ``predict --model_path`` would take for this run's."""
    if not os.path.isdir(output_dir):
        return
    old = sorted(n for n in os.listdir(output_dir) if _CHECKPOINT.fullmatch(n))
    for name in old:
        shutil.rmtree(os.path.join(output_dir, name))
    if old:
        logger.warning("--overwrite_output_dir: removed %d checkpoint(s) of an earlier run in %s (%s)", len(old),
                       output_dir, ", ".join(old))


def _remove_stale(output_dir: str, keep: set[str]) -> None:
    """Remove what an earlier run saved here and this save does not replace (its checkpoints stay)."""
    for name in os.listdir(output_dir):
        if name in keep or _CHECKPOINT.fullmatch(name) or not _RUN_OUTPUT.fullmatch(name):
            continue
        path = os.path.join(output_dir, name)
        if name == "README.md" and not _is_generated_card(path):
            continue
        logger.info("removing %s, left by an earlier run", path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _is_generated_card(path: str) -> bool:
    """A model card PEFT or transformers wrote (YAML front matter naming the library), not the user's notes."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(2000)
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith("---") and "library_name:" in head


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
    """Write the Trainer's model with its tokenizer, config, report and m3cls.json (see :func:`save_folder`)."""
    from ..model import lora

    def write_model(staging: str) -> None:
        if lora.is_peft_model(trainer.model):
            lora.save(trainer.model, staging, merge_lora)
            trainer.processing_class.save_pretrained(staging)
        else:
            trainer.save_model(staging)

    save_folder(write_model, output_dir, contract, evaluation, validation)


def save_folder(write_model, output_dir: str, contract: ModelContract, evaluation: dict | None = None,
                validation: tuple | None = None) -> None:
    """Write weights (``write_model(staging)``), report and m3cls.json to a uniquely named staging folder, then
    move them into place.

    The model survives its extras: a report, card or validation-file failure is a warning. A failure to write
    the model itself (``OSError``: a full disk) removes the staging folder, leaves any earlier model as it was
    and raises one OutputError naming the folder.
    """
    from ..model.loading import quiet_save_bars  # torch: loaded here, not when a command checks its folder

    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=output_dir)
    try:
        with quiet_save_bars():  # no "Writing model shards" bar from transformers
            write_model(staging)
        _write_extras(staging, output_dir, contract, evaluation, validation)
        write_train_config(staging, contract.info.get("settings"))
        write_contract(staging, contract)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise OutputError(f"{output_dir}: cannot save the model ({e.strerror or e}); free some space or "
                              f"choose another --output_dir (an earlier model there is unchanged)") from None
        raise
    # weights after everything else, m3cls.json last: each move is atomic, and a reader never finds new
    # weights without their config and tokenizer, nor m3cls.json without the weights
    names = sorted(os.listdir(staging), key=lambda n: (n == "m3cls.json", n.endswith(".safetensors")))
    _remove_stale(output_dir, set(names))
    for name in names:
        target = os.path.join(output_dir, name)
        if os.path.isdir(target):
            replace_folder(os.path.join(staging, name), target)
        else:
            os.replace(os.path.join(staging, name), target)
    os.rmdir(staging)
    logger.info("model saved to %s", output_dir)


def _write_extras(staging: str, output_dir: str, contract: ModelContract, evaluation: dict | None,
                  validation) -> None:
    """The report, validation predictions and model card: each failure is logged as a warning and the save
    goes on (a label matplotlib cannot draw, say, must not cost the trained model)."""
    def attempt(what: str, write) -> None:
        try:
            write()
        except OSError:
            raise  # a full disk: the model would not fit either
        except Exception as e:  # noqa: BLE001 -- an extra must not cost the model
            logger.warning("%s: the %s could not be written (%s: %s); the model is saved without it",
                           output_dir, what, type(e).__name__, e)

    if evaluation is not None:
        attempt("report", lambda: write_training_report(staging, evaluation, contract))
    if isinstance(validation, list):  # multi-label and regression: the rows as predict writes them
        attempt("validation predictions", lambda: write_validation_rows(staging, validation))
    elif validation is not None:
        attempt("validation predictions", lambda: write_validation_predictions(staging, *validation,
                                                                               contract.labels))
    attempt("model card", lambda: write_model_card(staging, contract, os.path.basename(os.path.abspath(output_dir))))


def write_training_report(staging: str, evaluation: dict, contract: ModelContract) -> None:
    """The training report: validation scores, the model named by its method beside the baseline of the same
    split, and a boxed warning when validation is too small to mean much."""
    from ..reports.pages import ladder_section
    from ..tasks.baseline import same_split
    from .advice import small_validation

    info = contract.info
    ladder, baseline = info.get("ladder"), info.get("baseline")
    texts = (info.get("data") or {}).get("validation_texts")
    small = small_validation(texts) if isinstance(texts, int) else None
    contract.task_type.write_report(
        os.path.join(staging, "report"), evaluation, info.get("history"),
        same_split(baseline, contract.task_type.baseline_name, texts) if baseline else None,
        title=f"m3cls: {info.get('base_model')} on {info['data']['train_path']}",
        sections=[ladder_section(ladder)] if ladder else None, method=contract.method_title,
        warnings=[small] if small else None)

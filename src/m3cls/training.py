"""Fine-tune a sequence classifier with the transformers Trainer and write a self-contained model folder.

What it does beyond the reference script: labels come from the data, texts are tokenized once and padded
per batch (not to max_length), batches are grouped by length, attention runs through SDPA with attention
dropout off by default (the fused kernel), bf16/fp16 is chosen for the hardware, the best checkpoint by
macro-F1 is kept, and ``m3cls.json`` records max_length, labels, data counts and final metrics.

Example::

    >>> from transformers import TrainingArguments
    >>> from m3cls.training import TrainConfig, train
    >>> result = train(TrainConfig(model_name_or_path="bundled", data_path="train.json"),
    ...                TrainingArguments(output_dir="runs/demo", num_train_epochs=1))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import ReadOptions, TextData, class_counts, read_labeled, stratified_split
from .errors import ConfigError, OutputError, TrainingInterrupted
from .labels import LabelSet
from .meta import write_meta
from .metrics import classification_report, flat_metrics

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """m3cls' own training options; transformers' ``TrainingArguments`` carry the rest."""

    data_path: str = field(default=None, metadata={"help": "Training data: messages JSON/JSONL, or "
                                                           "JSON/JSONL/CSV/TSV with text and label fields."})
    model_name_or_path: str = field(default="BAAI/bge-m3", metadata={
        "help": "Base model: a Hub name, a local folder, or 'bundled' for the packaged MiniLM."})
    validation_path: str | None = field(default=None, metadata={"help": "Labelled validation file."})
    validation_split: float = field(default=0.1, metadata={
        "help": "Share of the training data held out (stratified, seeded) when no --validation_path."})
    labels: str | None = field(default=None, metadata={
        "help": "Fix the label set and order, comma-separated, e.g. 'Human,GPT'. Default: sorted from data."})
    max_length: int = field(default=512, metadata={"help": "Tokens per text; longer texts are truncated."})
    data_format: str = field(default="auto", metadata={
        "help": "auto, messages, messages_jsonl, json, jsonl, csv or tsv."})
    text_column: str = field(default="text", metadata={"help": "Text field in flat records."})
    label_column: str = field(default="label", metadata={"help": "Label field in flat records."})
    text_message_index: int = field(default=1, metadata={"help": "messages[i] holding the text."})
    label_message_index: int = field(default=-1, metadata={"help": "messages[i] holding the label."})
    precision: str = field(default="auto", metadata={
        "help": "auto, fp32, bf16 or fp16. auto: bf16 on AMX/AVX512-BF16 CPUs and bf16-capable GPUs, "
                "fp16 on other GPUs, else fp32. --fp16 also works as in the reference."})
    attention_dropout: str = field(default="0", metadata={
        "help": "Attention dropout during training: a number, or 'model' to keep the model's own. 0 (the "
                "default) lets CPU attention use the fused SDPA kernel."})
    truncation: str = field(default="head", metadata={
        "help": "Which part of a text longer than max_length to keep: head, tail or head_tail."})
    class_weights: str = field(default="none", metadata={
        "help": "none, or balanced: weight the loss by inverse class frequency (imbalanced data)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without a better validation macro-F1."})
    baseline: bool = field(default=True, metadata={
        "help": "Fit a TF-IDF + logistic regression baseline on the same split and report it."})
    report: bool = field(default=True, metadata={"help": "Write report/index.html with plots."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 (default) fine-tunes every weight."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 x rank)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str | None = field(default=None, metadata={
        "help": "Comma-separated layer names for LoRA (default: PEFT's choice for the model type)."})
    merge_lora: bool = field(default=False, metadata={
        "help": "Save a merged plain model instead of the adapter (LoRA only)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Allow training into an existing non-empty --output_dir."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the Hub."})
    allow_pickle: bool = field(default=False, metadata={"help": "Allow pickle (.bin) weights."})

    def read_options(self) -> ReadOptions:
        return ReadOptions(self.data_format, self.text_column, self.label_column, self.text_message_index,
                           self.label_message_index)


@dataclass
class TrainResult:
    """Where the model went and how it scored on the validation data."""

    output_dir: str
    metrics: dict
    meta: dict


@dataclass
class PreparedData:
    train: TextData
    validation: TextData
    labels: LabelSet


def prepare_data(config: TrainConfig, seed: int) -> PreparedData:
    """Read and check all data before anything is loaded or written."""
    if not config.data_path:
        raise ConfigError("--data_path is required: the training data file")
    options = config.read_options()
    data = read_labeled(config.data_path, options)
    fixed = config.labels.split(",") if config.labels else None
    labels = LabelSet.discover(data.labels, config.data_path, fixed)  # the split keeps every class in train
    if config.validation_path:
        train_data, validation = data, read_labeled(config.validation_path, options)
    else:
        train_data, validation = stratified_split(data, config.validation_split, seed)
    labels.encode(validation.labels, validation.path, config.data_path)
    return PreparedData(train_data, validation, labels)


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


class EncodedDataset:
    """Token ids tokenized once, without padding; the collator pads each batch to its own longest text."""

    def __init__(self, tokenizer, texts: list[str], label_ids: list[int], max_length: int,
                 truncation: str = "head"):
        if truncation == "head":
            self.input_ids = tokenizer(texts, truncation=True, max_length=max_length,
                                       return_token_type_ids=False, return_attention_mask=False)["input_ids"]
        else:
            from .tokens import SpecialLayout

            layout = SpecialLayout.of(tokenizer)
            full = tokenizer(texts, truncation=False, return_token_type_ids=False,
                             return_attention_mask=False)["input_ids"]
            self.input_ids = [layout.truncate(ids, max_length, truncation) for ids in full]
        self.label_ids = label_ids

    def __len__(self) -> int:
        return len(self.label_ids)

    def __getitem__(self, i: int) -> dict:
        ids = self.input_ids[i]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": self.label_ids[i]}

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def model_overrides(config: TrainConfig) -> dict:
    """Config changes for training: attention dropout (keeps the fused attention kernel on CPU)."""
    if config.attention_dropout == "model":
        return {}
    try:
        value = float(config.attention_dropout)
    except ValueError:
        raise ConfigError(f"--attention_dropout {config.attention_dropout!r} must be a number from 0 to 1 or "
                          f"'model'") from None
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"--attention_dropout {value} must be from 0 to below 1")
    return {"attention_probs_dropout_prob": value, "attention_dropout": value}


def train(config: TrainConfig, args, explicit: frozenset[str] = frozenset()) -> TrainResult:
    """Fine-tune ``config.model_name_or_path`` on ``config.data_path``; ``args`` are TrainingArguments.

    ``explicit`` names the flags a user typed (see ``trainer_setup.finalize_args``).
    """
    import transformers

    from .checkpoints import resume_path, stop_on_sigint
    from .modeling import load_model, load_tokenizer
    from .trainer_setup import build_trainer, finalize_args

    resuming = args.resume_from_checkpoint not in (None, "", "false", "False")
    check_output_dir(args.output_dir, config.overwrite_output_dir or resuming)
    _check_choices(config)
    prepared = prepare_data(config, args.seed)
    labels = prepared.labels
    transformers.set_seed(args.seed)
    tokenizer = load_tokenizer(config.model_name_or_path, config.trust_remote_code)
    model = load_model(config.model_name_or_path, len(labels), labels.id2label, model_overrides(config),
                       config.trust_remote_code, config.allow_pickle)
    lora_summary = None
    if config.lora_r:
        from . import lora

        model, lora_summary = lora.wrap(model, config.lora_r, config.lora_alpha, config.lora_dropout,
                                        config.lora_target_modules)
    precision = finalize_args(args, config.precision, explicit)
    train_set, val_set = (EncodedDataset(tokenizer, part.texts, labels.encode(part.labels, part.path),
                                         config.max_length, config.truncation)
                          for part in (prepared.train, prepared.validation))
    meta = _base_meta(config, prepared, train_set, precision)
    meta["inspection"] = inspect_prepared(prepared, tokenizer, config)
    if lora_summary:
        meta["lora"] = dict(lora_summary, merged=config.merge_lora)
    trainer = build_trainer(model, args, tokenizer, train_set, val_set, labels, meta,
                            class_weights=_class_weights(config, train_set, len(labels)),
                            early_stopping_patience=config.early_stopping_patience)
    logger.info("training %s on %d texts (%d validation), labels: %s, precision %s",
                config.model_name_or_path, len(train_set), len(val_set), ", ".join(labels.names), precision)
    with stop_on_sigint() as interrupt:
        trainer.add_callback(interrupt)
        output = trainer.train(resume_from_checkpoint=resume_path(args))
    if interrupt.requested:
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; a checkpoint was saved in "
                                  f"{args.output_dir} -- resume with the same command plus "
                                  f"--resume_from_checkpoint auto")
    meta["training"] = {k: v for k, v in output.metrics.items() if isinstance(v, (int, float))}
    evaluation = _evaluate_and_calibrate(trainer, val_set, labels, meta)
    if config.baseline and trainer.is_world_process_zero():
        from .baseline import tfidf_baseline

        meta["baseline"] = tfidf_baseline(prepared.train.texts, prepared.train.labels, prepared.validation.texts,
                                          prepared.validation.labels, labels)
    meta["history"] = [e for e in trainer.state.log_history if "loss" in e or "eval_macro_f1" in e]
    if trainer.is_world_process_zero():
        save_final(trainer, args.output_dir, meta, evaluation if config.report else None, config.merge_lora)
    return TrainResult(args.output_dir, meta["metrics"], meta)


def _check_choices(config: TrainConfig) -> None:
    from .tokens import TRUNCATION_MODES

    if config.truncation not in TRUNCATION_MODES:
        raise ConfigError(f"--truncation {config.truncation!r} is not one of: {', '.join(TRUNCATION_MODES)}")
    if config.class_weights not in ("none", "balanced"):
        raise ConfigError(f"--class_weights {config.class_weights!r} is not one of: none, balanced")
    if config.early_stopping_patience is not None and config.early_stopping_patience < 1:
        raise ConfigError(f"--early_stopping_patience {config.early_stopping_patience} must be at least 1")
    if config.lora_r < 0:
        raise ConfigError(f"--lora_r {config.lora_r} must be 0 (off) or a positive rank such as 8")
    if config.merge_lora and not config.lora_r:
        raise ConfigError("--merge_lora needs --lora_r: there is no LoRA adapter to merge")
    if config.max_length < 8:
        raise ConfigError(f"--max_length {config.max_length} is too small; use at least 8 tokens")


def _class_weights(config: TrainConfig, train_set: EncodedDataset, n_labels: int) -> list[float] | None:
    """'balanced': n / (k * n_c), the inverse class frequency, so every class weighs the same in the loss."""
    if config.class_weights == "none":
        return None
    counts = np.bincount(np.asarray(train_set.label_ids), minlength=n_labels)
    weights = len(train_set) / (n_labels * np.maximum(counts, 1))
    logger.info("class weights: %s", ", ".join(f"{w:.3f}" for w in weights))
    return weights.tolist()


def inspect_prepared(prepared: PreparedData, tokenizer, config: TrainConfig) -> dict:
    """The data inspection run at the start of training; its warnings go to the log."""
    from .inspection import inspect_splits, warnings_for

    report = inspect_splits(prepared.train, prepared.validation, tokenizer, config.max_length)
    for warning in warnings_for(report, config.model_name_or_path):
        logger.warning("%s", warning)
    return report


def _evaluate_and_calibrate(trainer, val_set: EncodedDataset, labels: LabelSet, meta: dict) -> dict:
    """Score the best model on validation, fit its temperature there, and record both in ``meta``."""
    from .calibration import choose_temperature, evaluate_logits

    output = trainer.predict(val_set)
    logits = np.asarray(output.predictions, dtype=np.float64)
    # the eval dataloader may reorder (length grouping): use the labels it returns
    y_true = np.asarray(output.label_ids)
    temperature, note = choose_temperature(logits, y_true)
    if note:
        logger.warning("calibration: %s", note)
    evaluation = evaluate_logits(logits, y_true, labels.names, temperature)
    after = evaluation["after"]
    meta["temperature"] = temperature
    meta["metrics"] = {k: v for k, v in after.items() if k not in ("reliability", "temperature")}
    meta["calibration"] = {"temperature": temperature, "fitted_on": "validation", "note": note,
                           "ece_before": evaluation["before"]["ece"], "ece_after": after["ece"],
                           "log_loss_before": evaluation["before"]["log_loss"], "log_loss_after": after["log_loss"]}
    logger.info("validation: accuracy %.4f, macro-F1 %.4f; temperature %.3f: ECE %.4f -> %.4f, log-loss %.4f -> "
                "%.4f", after["accuracy"], after["macro_f1"], temperature, evaluation["before"]["ece"],
                after["ece"], evaluation["before"]["log_loss"], after["log_loss"])
    return evaluation


def _base_meta(config: TrainConfig, prepared: PreparedData, train_set: EncodedDataset, precision: str) -> dict:
    lengths = np.array(train_set.lengths())
    return {
        "m3cls_version": _version(),
        "base_model": config.model_name_or_path,
        "max_length": config.max_length,
        "labels": list(prepared.labels.names),
        "temperature": 1.0,
        "precision": precision,
        "attention_dropout": config.attention_dropout,
        "read_options": asdict(config.read_options()),
        "data": {
            "train_path": config.data_path,
            "validation_path": config.validation_path or f"{config.validation_split:g} of train (stratified)",
            "train_counts": class_counts(prepared.train.labels),
            "validation_counts": class_counts(prepared.validation.labels),
            "train_truncated_share": float((lengths >= config.max_length).mean()),
        },
    }


def save_final(trainer, output_dir: str, meta: dict, evaluation: dict | None = None, merge_lora: bool = False) -> None:
    """Write weights, tokenizer, config, report and m3cls.json to a staging folder, then move them into place."""
    from . import lora

    staging = os.path.join(output_dir, ".m3cls-final.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    if lora.is_peft_model(trainer.model):
        lora.save(trainer.model, staging, merge_lora)
        trainer.processing_class.save_pretrained(staging)
    else:
        trainer.save_model(staging)
    if evaluation is not None:
        from .report import write_report

        write_report(os.path.join(staging, "report"), evaluation, meta.get("history"), meta.get("baseline"),
                     title=f"m3cls: {meta['base_model']} on {meta['data']['train_path']}")
    write_meta(staging, meta)
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


def compute_metrics_for(labels: LabelSet):
    """The Trainer's compute_metrics: accuracy, macro-F1 and per-class scores."""

    def compute(eval_pred) -> dict:
        predicted = np.asarray(eval_pred.predictions).argmax(axis=-1)
        return flat_metrics(classification_report(np.asarray(eval_pred.label_ids), predicted, labels.names))

    return compute


def _version() -> str:
    from . import __version__

    return __version__

"""Fine-tune a sequence classifier with the transformers Trainer and write a self-contained model folder.

What it does beyond the reference script: labels come from the data, texts are tokenized once through the
model contract's encoder and padded per batch (not to max_length), batches are grouped by length, attention
runs through SDPA with attention dropout off by default (the fused kernel), bf16/fp16 is chosen for the
hardware, the best checkpoint by macro-F1 is kept, and ``m3cls.json`` records the contract every consumer reads.

Example::

    >>> from transformers import TrainingArguments
    >>> from m3cls.training import TrainConfig, train
    >>> result = train(TrainConfig(model_name_or_path="bundled", data_path="train.json"),
    ...                TrainingArguments(output_dir="runs/demo", num_train_epochs=1))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ..contract import ModelContract
from ..errors import TrainingInterrupted
from ..metrics import softmax
from ..splits import SPLIT_METHODS
from ..tasks import PROBLEM_TYPES, label_counts
from ..tokens import TextEncoder
from .args import as_values, build_training_args
from .config import TrainConfig
from .inputs import EncodedDataset, PreparedData, class_weights, prepare_data
from .save import check_output_dir, save_final
from .tasks import score_validation, task_baseline, trainer_hooks

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the model went, how it scored on the validation data, and the contract it was saved with."""

    output_dir: str
    metrics: dict
    contract: ModelContract


def train(config: TrainConfig, args, explicit: frozenset[str] = frozenset()) -> TrainResult:
    """Fine-tune ``config.model_name_or_path`` on ``config.data_path``.

    ``args`` are transformers TrainingArguments, or their values as a dict (what the CLI passes, so they are
    constructed only once, with m3cls' final settings). ``explicit`` names the flags a user typed.
    """
    import transformers

    from ..modeling import load_model, load_tokenizer

    values = as_values(args)
    resuming = values.get("resume_from_checkpoint") not in (None, "", "false", "False")
    check_output_dir(values.get("output_dir"), config.overwrite_output_dir or resuming)
    config.check()
    prepared = prepare_data(config, values.get("seed", 42))
    args, precision = build_training_args(values, config.precision, explicit, prepared.task)
    transformers.set_seed(args.seed)
    tokenizer = load_tokenizer(config.model_name_or_path, config.trust_remote_code)
    model = load_model(config.model_name_or_path, len(prepared.labels), prepared.labels.id2label,
                       config.model_overrides(), config.trust_remote_code, config.allow_pickle,
                       PROBLEM_TYPES[prepared.task])
    contract = _contract(config, prepared, precision)
    if config.lora_r:
        from .. import lora

        model, summary = lora.wrap(model, config.lora_r, config.lora_alpha, config.lora_dropout,
                                   config.lora_target_modules)
        contract = contract.with_info(lora=dict(summary, merged=config.merge_lora))
    encoder = TextEncoder.from_contract(tokenizer, contract)
    train_set, val_set = (EncodedDataset(encoder, part.texts, prepared.targets(part))
                          for part in (prepared.train, prepared.validation))
    contract = contract.with_info(inspection=_inspect(prepared, tokenizer, config),
                                  data=dict(contract.info["data"], train_truncated_share=float(
                                      (np.array(train_set.lengths()) >= config.max_length).mean())))
    trainer = _fit(config, args, model, tokenizer, train_set, val_set, prepared, contract)
    return _finish(config, args, trainer, val_set, prepared, contract)


def _fit(config: TrainConfig, args, model, tokenizer, train_set, val_set, prepared: PreparedData,
         contract: ModelContract):
    """Build the Trainer and train, resuming and stopping on Ctrl-C as asked."""
    from .checkpoints import resume_path, stop_on_sigint
    from .trainer import build_trainer

    labels = prepared.labels
    hooks = trainer_hooks(prepared.task, config.class_weights, train_set.label_ids, labels, prepared.scale)
    trainer = build_trainer(model, args, tokenizer, train_set, val_set, labels, contract,
                            class_weights=None if hooks else class_weights(config.class_weights,
                                                                           train_set.label_ids, len(labels)),
                            early_stopping_patience=config.early_stopping_patience, **hooks)
    logger.info("training %s on %d texts (%d validation), labels: %s, precision %s", config.model_name_or_path,
                len(train_set), len(val_set), ", ".join(labels.names), contract.info["precision"])
    with stop_on_sigint() as interrupt:
        trainer.add_callback(interrupt)
        output = trainer.train(resume_from_checkpoint=resume_path(args))
    if interrupt.requested:
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; a checkpoint was saved in "
                                  f"{args.output_dir} -- resume with the same command plus "
                                  f"--resume_from_checkpoint auto")
    trainer.m3cls_training = {k: v for k, v in output.metrics.items() if isinstance(v, (int, float))}
    return trainer


def _finish(config: TrainConfig, args, trainer, val_set, prepared: PreparedData,
            contract: ModelContract) -> TrainResult:
    """Score the best model on validation, calibrate it, fit the baseline, and save everything (rank 0)."""
    if prepared.task != "single_label":
        return _finish_task(config, args, trainer, val_set, prepared, contract)
    evaluation, logits, y_true = _evaluate_and_calibrate(trainer, val_set, prepared)
    after = evaluation["after"]
    temperature = after["temperature"]
    contract = contract.replace(temperature=temperature).with_info(
        training=trainer.m3cls_training,
        metrics={k: v for k, v in after.items() if k not in ("reliability", "temperature")},
        calibration=evaluation["calibration"],
        history=[e for e in trainer.state.log_history if "loss" in e or "eval_macro_f1" in e])
    if trainer.is_world_process_zero():
        if config.baseline:
            from ..baseline import tfidf_baseline

            contract = contract.with_info(baseline=tfidf_baseline(
                prepared.train.texts, prepared.train.labels, prepared.validation.texts, prepared.validation.labels,
                prepared.labels))
        save_final(trainer, args.output_dir, contract, evaluation if config.report else None, config.merge_lora,
                   validation=(softmax(logits, temperature), y_true))
    return TrainResult(args.output_dir, contract.info["metrics"], contract)


def _finish_task(config: TrainConfig, args, trainer, val_set, prepared: PreparedData,
                 contract: ModelContract) -> TrainResult:
    """``_finish`` for multi-label (temperature, thresholds) and regression (scores in the target's units)."""
    output = trainer.predict(val_set)
    truth = np.asarray(prepared.validation.labels if prepared.task == "regression" else output.label_ids)
    evaluation, contract, rows = score_validation(prepared.task, np.asarray(output.predictions, dtype=np.float64),
                                                  truth, prepared.labels, prepared.scale, contract)
    after = evaluation["after"]
    contract = contract.with_info(
        training=trainer.m3cls_training,
        metrics={k: v for k, v in after.items() if k not in ("reliability", "temperature")},
        calibration=evaluation.get("calibration"),
        history=[e for e in trainer.state.log_history if "loss" in e or any(k.startswith("eval_") for k in e)])
    if trainer.is_world_process_zero():
        if config.baseline:
            contract = contract.with_info(baseline=task_baseline(prepared.task, prepared))
        save_final(trainer, args.output_dir, contract, evaluation if config.report else None, config.merge_lora,
                   validation=rows)
    return TrainResult(args.output_dir, contract.info["metrics"], contract)


def _inspect(prepared: PreparedData, tokenizer, config: TrainConfig) -> dict:
    """The data inspection run at the start of training; its warnings go to the log."""
    from ..inspection import inspect_splits, warnings_for

    report = inspect_splits(prepared.train, prepared.validation, tokenizer, config.max_length)
    for warning in warnings_for(report, config.model_name_or_path):
        logger.warning("%s", warning)
    return report


def _evaluate_and_calibrate(trainer, val_set: EncodedDataset, prepared: PreparedData):
    """Validation logits of the best model (in validation order), its fitted temperature, and the scores."""
    from ..calibration import choose_temperature, evaluate_logits

    output = trainer.predict(val_set)
    logits = np.asarray(output.predictions, dtype=np.float64)
    y_true = np.asarray(output.label_ids)
    temperature, note = choose_temperature(logits, y_true)
    if note:
        logger.warning("calibration: %s", note)
    evaluation = evaluate_logits(logits, y_true, prepared.labels.names, temperature)
    before, after = evaluation["before"], evaluation["after"]
    evaluation["calibration"] = {"temperature": temperature, "fitted_on": "validation", "note": note,
                                 "ece_before": before["ece"], "ece_after": after["ece"],
                                 "log_loss_before": before["log_loss"], "log_loss_after": after["log_loss"]}
    logger.info("validation: accuracy %.4f, macro-F1 %.4f; temperature %.3f: ECE %.4f -> %.4f, log-loss %.4f -> "
                "%.4f", after["accuracy"], after["macro_f1"], temperature, before["ece"], after["ece"],
                before["log_loss"], after["log_loss"])
    return evaluation, logits, y_true


def _contract(config: TrainConfig, prepared: PreparedData, precision: str) -> ModelContract:
    """The decision settings this run fixes, and the facts about it known before training."""
    from .. import __version__

    return ModelContract(
        labels=prepared.labels.names, max_length=config.max_length, truncation=config.truncation, task=prepared.task,
        read_options=asdict(config.read_options()),
        info={"m3cls_version": __version__, "base_model": config.model_name_or_path, "precision": precision,
              "attention_dropout": config.attention_dropout,
              "data": {"train_path": config.data_path,
                       "validation_path": config.validation_path
                       or f"{config.validation_split:g} of train ({SPLIT_METHODS[prepared.task]})",
                       "train_counts": label_counts(prepared.task, prepared.train.labels),
                       "validation_counts": label_counts(prepared.task, prepared.validation.labels)}})

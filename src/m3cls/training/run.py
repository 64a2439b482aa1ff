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
import time

import numpy as np

from ..errors import ConfigError, TrainingInterrupted
from ..metrics.classification import softmax
from ..model.contract import ModelContract
from ..model.tokens import TextEncoder
from ..tasks.targets import PROBLEM_TYPES
from .args import as_values, build_training_args
from .augment import AugmentedDataset, settings_of
from .config import TrainConfig, TrainResult
from .hub import HubTarget, push_folder, take_hub_target
from .inputs import EncodedDataset, PreparedData, class_weights, document_logits, prepare_data
from .save import check_output_dir, clear_earlier_checkpoints, save_final
from .scoring import base_contract, inspect_data, metrics_of, rung, score_and_calibrate, timed_baseline
from .settings import run_settings
from .tasks import score_validation, task_baseline, trainer_hooks

logger = logging.getLogger(__name__)


def train(config: TrainConfig, args, explicit: frozenset[str] = frozenset(),
          prepared: PreparedData | None = None, callbacks: tuple = ()) -> TrainResult:
    """Fine-tune ``config.model_name_or_path`` on ``config.data_path`` (or fit a probe: ``method="probe"``).

    ``args`` are transformers TrainingArguments, or their values as a dict (what the CLI passes, so they are
    constructed only once, with m3cls' final settings). ``explicit`` names the flags a user typed.
    ``prepared`` gives the split directly (cross-validation folds) instead of reading ``data_path``;
    ``callbacks`` are extra TrainerCallbacks (``m3cls tune`` reports each evaluation to Optuna through one).
    """
    import transformers

    from ..model.loading import load_model, load_tokenizer

    values = as_values(args)
    if config.method == "probe":
        from .probe import train_probe

        return train_probe(config, values, explicit, prepared)
    started = time.perf_counter()
    resuming = values.get("resume_from_checkpoint") not in (None, "", "false", "False")
    check_output_dir(values.get("output_dir"), config.overwrite_output_dir or resuming)
    config.check()
    prepared = prepared or prepare_data(config, values.get("seed", 42))
    if config.long_text == "chunks" and prepared.task != "single_label":  # before the model loads
        raise ConfigError(f"--long_text chunks trains on windows of single-label texts; a {prepared.task} "
                          f"run reads each text's first --max_length tokens: drop --long_text chunks")
    settings = run_settings(config, values, explicit)  # train_config.yaml: the run as given, resolved
    hub = take_hub_target(values)
    args, precision = build_training_args(values, config.precision, explicit, prepared.task)
    transformers.set_seed(args.seed)
    tokenizer = load_tokenizer(config.model_name_or_path, config.trust_remote_code)
    model = load_model(config.model_name_or_path, len(prepared.labels), prepared.labels.id2label,
                       config.model_overrides(), config.trust_remote_code, config.allow_pickle,
                       PROBLEM_TYPES[prepared.task])
    contract = base_contract(config, prepared, precision).with_info(attention_dropout=config.attention_dropout,
                                                                    settings=settings)
    if config.lora_r:
        from ..model import lora

        model, summary = lora.wrap(model, config.lora_r, config.lora_alpha, config.lora_dropout,
                                   config.lora_target_modules)
        contract = contract.with_info(lora=dict(summary, merged=config.merge_lora))
    encoder = TextEncoder.from_contract(tokenizer, contract)
    windows = contract.long_text == "chunks"
    if windows:
        encoder.check_windows()
    train_set, val_set = (EncodedDataset(encoder, part.texts, prepared.targets(part), windows=windows)
                          for part in (prepared.train, prepared.validation))
    augment = settings_of(config.augment, config.augment_prob, args.seed)
    if augment:
        train_set = AugmentedDataset(train_set, encoder, prepared.train.texts, augment)
        contract = contract.with_info(augment=augment)
    contract = contract.with_info(inspection=inspect_data(prepared, tokenizer, config),
                                  data=dict(contract.info["data"], train_truncated_share=float(
                                      (np.array(train_set.lengths()) >= config.max_length).mean())))
    if config.overwrite_output_dir and not resuming and args.should_save:
        clear_earlier_checkpoints(args.output_dir)
    trainer = _fit(config, args, model, tokenizer, train_set, val_set, prepared, contract, callbacks)
    trainer.m3cls_seconds = time.perf_counter() - started
    return _finish(config, args, trainer, val_set, prepared, contract, hub)


def _fit(config: TrainConfig, args, model, tokenizer, train_set, val_set, prepared: PreparedData,
         contract: ModelContract, callbacks: tuple = ()):
    """Build the Trainer and train, resuming and stopping on Ctrl-C as asked."""
    from .checkpoints import resume_path, stop_on_sigint
    from .trainer import build_trainer

    labels = prepared.labels
    hooks = trainer_hooks(prepared.task, config.class_weights, train_set.label_ids, labels, prepared.scale)
    trainer = build_trainer(model, args, tokenizer, train_set, val_set, labels, contract,
                            class_weights=None if hooks else class_weights(config.class_weights,
                                                                           train_set.label_ids, len(labels)),
                            early_stopping_patience=config.early_stopping_patience, **hooks)
    logger.info("training %s on %d texts (%d validation)%s, labels: %s, precision %s", config.model_name_or_path,
                len(train_set.document_label_ids), len(val_set.document_label_ids),
                f" as {len(train_set)} windows ({len(val_set)} validation)" if train_set.bounds is not None else "",
                ", ".join(labels.names), contract.info["precision"])
    with stop_on_sigint() as interrupt:
        for callback in (interrupt, *callbacks):
            trainer.add_callback(callback)
        output = trainer.train(resume_from_checkpoint=resume_path(args))
    if interrupt.requested:
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; a checkpoint was saved in "
                                  f"{args.output_dir} -- resume with the same command plus "
                                  f"--resume_from_checkpoint auto")
    trainer.m3cls_training = {k: v for k, v in output.metrics.items() if isinstance(v, (int, float))}
    return trainer


def _finish(config: TrainConfig, args, trainer, val_set, prepared: PreparedData,
            contract: ModelContract, hub: HubTarget | None = None) -> TrainResult:
    """Score the best model on validation, calibrate it, fit the baseline, and save everything (rank 0)."""
    if prepared.task != "single_label":
        return _finish_task(config, args, trainer, val_set, prepared, contract, hub)
    output = trainer.predict(val_set)  # per window with --long_text chunks: scored per document
    logits = document_logits(np.asarray(output.predictions, dtype=np.float64), val_set.bounds)
    y_true = np.asarray(output.label_ids if val_set.bounds is None else val_set.document_label_ids)
    evaluation = score_and_calibrate(logits, y_true, prepared.labels.names)
    after = evaluation["after"]
    temperature = after["temperature"]
    contract = contract.replace(temperature=temperature).with_info(
        training=trainer.m3cls_training, metrics=metrics_of(evaluation), calibration=evaluation["calibration"],
        history=[e for e in trainer.state.log_history if "loss" in e or "eval_macro_f1" in e])
    if trainer.is_world_process_zero():
        contract = _ladder(config, args, trainer, prepared, contract)
        save_final(trainer, args.output_dir, contract, evaluation if config.report else None, config.merge_lora,
                   validation=(softmax(logits, temperature), y_true))
        if hub is not None:
            push_folder(args.output_dir, hub)
    return TrainResult(args.output_dir, contract.info["metrics"], contract, logits)


def _finish_task(config: TrainConfig, args, trainer, val_set, prepared: PreparedData,
                 contract: ModelContract, hub: HubTarget | None = None) -> TrainResult:
    """``_finish`` for multi-label (temperature, thresholds) and regression (scores in the target's units).

    No ladder: its rungs are single-label scores (accuracy, macro-F1); the task's baseline sits in the report.
    """
    output = trainer.predict(val_set)
    logits = np.asarray(output.predictions, dtype=np.float64)
    truth = np.asarray(prepared.validation.labels if prepared.task == "regression" else output.label_ids)
    evaluation, contract, rows = score_validation(prepared.task, logits, truth, prepared.labels, prepared.scale,
                                                  contract)
    contract = contract.with_info(
        training=trainer.m3cls_training, metrics=metrics_of(evaluation), calibration=evaluation.get("calibration"),
        history=[e for e in trainer.state.log_history if "loss" in e or any(k.startswith("eval_") for k in e)])
    if trainer.is_world_process_zero():
        if config.baseline:
            contract = contract.with_info(baseline=task_baseline(prepared.task, prepared))
        save_final(trainer, args.output_dir, contract, evaluation if config.report else None, config.merge_lora,
                   validation=rows)
        if hub is not None:
            push_folder(args.output_dir, hub)
    return TrainResult(args.output_dir, contract.info["metrics"], contract, logits)


def _ladder(config: TrainConfig, args, trainer, prepared: PreparedData, contract: ModelContract) -> ModelContract:
    """The baseline and the probe on the same split, beside fine-tuning, each with its score and wall time."""
    metrics = contract.info["metrics"]
    ladder = []
    if config.baseline:
        baseline, baseline_rung = timed_baseline(prepared)
        contract = contract.with_info(baseline=baseline)
        ladder.append(baseline_rung)
    if config.ladder:
        from dataclasses import replace

        from .probe import fit_probe, make_embedder, probe_rung

        # the probe reads long texts as fine-tuning did (windows with --long_text chunks), so the rungs compare
        probe_config = replace(config, method="probe", probe_head="logreg", pooling="auto")
        values = {"use_cpu": args.use_cpu, "per_device_eval_batch_size": args.per_device_eval_batch_size,
                  "fp16": args.fp16, "bf16": args.bf16}
        fit = fit_probe(make_embedder(probe_config, values), prepared, probe_config.head_settings(args.seed))
        ladder.append(probe_rung(fit, prepared.labels.names))
    steps = contract.info["training"].get("train_runtime")
    ladder.append(rung("finetune", metrics["accuracy"], metrics["macro_f1"], trainer.m3cls_seconds,
                       f"of which training {steps:.1f} s" if steps else ""))
    return contract.with_info(ladder=ladder)

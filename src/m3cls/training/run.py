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

or, with the run checked before anything is read, ``train(TrainRequest.build(config, args))``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..errors import TrainingInterrupted
from ..metrics.classification import softmax
from ..model.contract import ModelContract
from ..model.tokens import TextEncoder
from ..tasks import get_task
from ..tasks.targets import PROBLEM_TYPES
from .advice import data_advice, probe_beats_finetune
from .augment import AugmentedDataset, settings_of
from .config import TrainConfig, TrainResult
from .hub import HubTarget, push_folder, take_hub_target
from .inputs import EncodedDataset, PreparedData, class_weights, document_logits, prepare_data
from .request import TrainRequest
from .save import check_output_dir, clear_earlier_checkpoints, save_final
from .scoring import base_contract, inspect_data, metrics_of, rung, score_and_calibrate, timed_baseline
from .tasks import trainer_hooks

logger = logging.getLogger(__name__)


def train(config: TrainConfig | TrainRequest, args=None, explicit: frozenset[str] = frozenset(),
          prepared: PreparedData | None = None, callbacks: tuple = ()) -> TrainResult:
    """Fine-tune ``config.model_name_or_path`` on ``config.data_path`` (or fit a probe: ``method="probe"``).

    ``config`` is a :class:`~m3cls.training.request.TrainRequest` (what the CLI passes, checked when built), or a
    TrainConfig with ``args`` (transformers TrainingArguments, or their values as a dict) and ``explicit`` (the
    flags a user typed), made into one here.
    ``prepared`` gives the split directly (cross-validation folds) instead of reading ``data_path``;
    ``callbacks`` are extra TrainerCallbacks (``m3cls tune`` reports each evaluation to Optuna through one).
    """
    request = TrainRequest.of(config, args, explicit)
    if request.config.calibrate_on == "oof":  # the run below, then folds over its training texts
        from .oof import train_calibrated_on_oof

        return train_calibrated_on_oof(request, train_once, prepared, callbacks)
    return train_once(request, prepared, callbacks)


def train_once(request: TrainRequest, prepared: PreparedData | None = None, callbacks: tuple = ()) -> TrainResult:
    """:func:`train` with the temperature fitted on the validation split, whatever ``--calibrate_on`` says."""
    import transformers

    from ..model.folder import ModelFolder
    from ..model.loading import load_model, load_tokenizer

    config, values = request.config, dict(request.values)
    if config.method == "probe":
        from .probe import train_probe

        return train_probe(request, prepared)
    started = time.perf_counter()
    resuming = values.get("resume_from_checkpoint") not in (None, "", "false", "False")
    check_output_dir(values.get("output_dir"), config.overwrite_output_dir, config.model_name_or_path, resuming)
    memory = _plan_memory(config, values)  # before the data: a job that cannot fit stops here
    prepared = prepared or prepare_data(config, request.seed)
    if config.long_text == "chunks":  # before the model loads
        get_task(prepared.task).refuse("chunks")
    settings = request.settings()  # train_config.yaml: the run as given, resolved
    hub = take_hub_target(values)
    args, precision = request.training_args(prepared.task, values)
    transformers.set_seed(args.seed)
    base = ModelFolder.read(config.model_name_or_path)
    tokenizer = load_tokenizer(base, config.trust_remote_code)
    model = load_model(base, len(prepared.labels), prepared.labels.id2label,
                       config.model_overrides(), config.trust_remote_code, config.allow_pickle,
                       PROBLEM_TYPES[prepared.task])
    contract = base_contract(config, prepared, precision).with_info(attention_dropout=config.attention_dropout,
                                                                    settings=settings)
    if memory is not None:
        contract = contract.with_info(memory_plan=memory.info())
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
    if memory is not None:
        contract = contract.with_info(memory_plan=_measured(memory, args))
    return _finish(config, args, trainer, val_set, prepared, contract, hub)


def _plan_memory(config: TrainConfig, values: dict):
    """The memory plan (:mod:`m3cls.training.memory`) for this run; it may change ``values`` in place."""
    from .args import _on_gpu, cpu_defaults, resolve_precision
    from .memory import plan_training_memory

    on_gpu = _on_gpu({**cpu_defaults(), **values})
    return plan_training_memory(config, values, resolve_precision(values, config.precision), on_gpu)


def _measured(memory, args) -> dict:
    """The plan with the peak measured over the run so far, logged beside the estimate."""
    from .args import _on_gpu
    from .memory import measured_peak

    peak = measured_peak(_on_gpu({"use_cpu": args.use_cpu}))
    info = memory.info(peak)
    logger.info("memory: measured peak %.2f GiB (%s), estimate %.2f GiB, budget %.2f GiB", info["measured_peak_gib"],
                "GPU memory allocated" if not args.use_cpu else "peak RSS", info["estimate_gib"], info["budget_gib"])
    return info


def _fit(config: TrainConfig, args, model, tokenizer, train_set, val_set, prepared: PreparedData,
         contract: ModelContract, callbacks: tuple = ()):
    """Build the Trainer and train, resuming and stopping on Ctrl-C as asked."""
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
    for line in data_advice(prepared.task, train_set.document_label_ids, len(val_set.document_label_ids),
                            labels.names):
        logger.warning(line)
    return train_interruptibly(trainer, args, callbacks)


def train_interruptibly(trainer, args, callbacks: tuple = ()):
    """``trainer.train()``, resuming as asked; Ctrl-C saves a checkpoint and stops (TrainingInterrupted)."""
    from .checkpoints import resume_path, stop_on_sigint

    with stop_on_sigint() as interrupt:
        for callback in (interrupt, *callbacks):
            trainer.add_callback(callback)
        try:
            output = trainer.train(resume_from_checkpoint=resume_path(args))
        finally:  # training levers off even when training raised (a pruned trial, an error)
            for undo in getattr(trainer, "m3cls_undo", ()):
                undo()
    if interrupt.requested:
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; a checkpoint was saved in "
                                  f"{args.output_dir} -- resume with the same command plus "
                                  f"--resume_from_checkpoint auto")
    trainer.m3cls_training = {k: v for k, v in output.metrics.items() if isinstance(v, (int, float))}
    return trainer


def _finish(config: TrainConfig, args, trainer, val_set, prepared: PreparedData,
            contract: ModelContract, hub: HubTarget | None = None) -> TrainResult:
    """Score the best model on validation, calibrate it, fit the baseline, and save everything (rank 0)."""
    if not get_task(prepared.task).has_ladder:
        return _finish_task(config, args, trainer, val_set, prepared, contract, hub)
    output = trainer.predict(val_set)  # per window with --long_text chunks: scored per document
    logits = document_logits(np.asarray(output.predictions, dtype=np.float64), val_set.bounds)
    y_true = np.asarray(output.label_ids if val_set.bounds is None else val_set.document_label_ids)
    evaluation = score_and_calibrate(logits, y_true, prepared.labels.names)
    after = evaluation["after"]
    temperature = after["temperature"]
    contract = contract.replace(temperature=temperature).with_info(
        training=trainer.m3cls_training, metrics=metrics_of(evaluation), calibration=evaluation["calibration"],
        history=[e for e in trainer.state.log_history if "loss" in e or "train_loss" in e or "eval_macro_f1" in e])
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
    task = get_task(prepared.task)
    truth = task.validation_truth(prepared.validation.labels, output.label_ids)
    evaluation, contract, rows = task.score_validation(logits, truth, prepared.labels, prepared.scale, contract)
    contract = contract.with_info(
        training=trainer.m3cls_training, metrics=metrics_of(evaluation), calibration=evaluation.get("calibration"),
        history=[e for e in trainer.state.log_history
                 if "loss" in e or "train_loss" in e or any(k.startswith("eval_") for k in e)])
    if trainer.is_world_process_zero():
        if config.baseline:
            contract = contract.with_info(baseline=task.baseline(prepared))
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
    advice = probe_beats_finetune(ladder, trainer.state.global_step)
    if advice:
        logger.warning(advice)
    return contract.with_info(ladder=ladder)

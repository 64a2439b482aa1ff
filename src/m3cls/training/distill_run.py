"""The distillation run (:mod:`.distill` holds the settings, the targets and the loss): read, ask the teacher
once, build the student, train it with the transformers Trainer, re-fit its decision settings and save."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np

from ..data.readers import iter_items
from ..data.records import ReadOptions, TextData
from ..errors import ConfigError, DataError
from ..model.contract import ModelContract
from ..model.folder import read_contract
from ..tasks import get_task
from ..tasks.labels import LabelSet
from ..tasks.targets import TargetScale, label_counts, normalize_label
from .config import TrainConfig, TrainResult
from .distill import (
    DistillSettings,
    distill_loss,
    shrink_layers,
    soft_targets,
    teacher_decisions,
    teacher_logits,
)
from .request import TrainRequest

logger = logging.getLogger(__name__)


def distill(config: "TrainConfig | TrainRequest", values: dict | None = None, explicit: frozenset[str] = frozenset(),
            settings: DistillSettings = DistillSettings()) -> TrainResult:
    """Distil ``settings.teacher`` into a student trained on ``config.data_path``; saved in ``output_dir``.

    Example::

        >>> distill(TrainConfig(data_path="texts.jsonl"), {"output_dir": "runs/small"},
        ...         settings=DistillSettings(teacher="runs/big", student_layers=3))           # doctest: +SKIP
    """
    import transformers

    from ..model.loading import load_tokenizer
    from ..model.tokens import TextEncoder
    from .args import build_training_args
    from .inputs import EncodedDataset
    from .save import check_output_dir

    request = TrainRequest.of(config, values, explicit)
    config, values, explicit = request.config, request.values, request.explicit
    settings.check()
    if "model_name_or_path" in explicit or config.method != "finetune":
        raise ConfigError("m3cls distill trains the student named by --student or --student_layers: drop "
                          "--model_name_or_path and --method")
    check_output_dir(values.get("output_dir"), config.overwrite_output_dir)
    teacher = read_contract(settings.teacher)
    if teacher is None:
        raise ConfigError(f"--teacher {settings.teacher}: no m3cls.json; give a folder written by 'm3cls train'")
    source = settings.student or settings.teacher
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    if settings.student_layers and settings.student:
        _check_tokenizer(settings, tokenizer, load_tokenizer(settings.teacher, config.trust_remote_code))
    texts, given, path = _read(config, explicit, teacher)
    logits = teacher_logits(settings.teacher, texts, config.embedding_cache(),
                            values.get("per_device_eval_batch_size") or 64, "cpu" if values.get("use_cpu") else "auto")
    decided = teacher_decisions(teacher.task, teacher, logits)
    targets = soft_targets(teacher.task, logits, settings.distill_temperature, given, teacher.labels,
                           settings.label_weight, (teacher.target_mean or 0.0, teacher.target_std or 1.0))
    train_rows, val_rows = _split(teacher.task, decided, config, values.get("seed", 42), path)
    args, precision = build_training_args(values, config.precision, explicit, teacher.task)
    transformers.set_seed(args.seed)
    model, kept = _student(settings, teacher, config)
    contract = _contract(config, explicit, teacher, settings, precision, kept, path,
                         [decided[i] for i in train_rows], [decided[i] for i in val_rows])
    encoder = TextEncoder.from_contract(tokenizer, contract)
    train_set, val_set = (EncodedDataset(encoder, [texts[i] for i in rows], [targets[i].tolist() for i in rows])
                          for rows in (train_rows, val_rows))
    trainer = _train(model, args, tokenizer, train_set, val_set, contract, settings)
    truth = [given[i] for i in val_rows]
    against = "the given labels" if all(t is not None for t in truth) else "the teacher's decisions"
    if against != "the given labels":
        truth = [decided[i] for i in val_rows]
    return _finish(config, args, trainer, val_set, contract, truth, against)


def _check_tokenizer(settings: DistillSettings, student, teacher) -> None:
    if student.get_vocab() != teacher.get_vocab():
        raise ConfigError(f"--student {settings.student} reads text with another tokenizer than the teacher "
                          f"{settings.teacher}, so its layers cannot take the teacher's inputs; drop "
                          f"--student_layers (train {settings.student} whole) or drop --student (keep the "
                          f"teacher's own layers)")


def _read(config: TrainConfig, explicit: frozenset[str], teacher: ModelContract):
    """Texts and their labels (None where a record has none), read as the teacher was trained to read, except
    for read flags typed here."""
    from dataclasses import fields

    typed = {f.name: getattr(config, f.name) for f in fields(ReadOptions) if f.name in explicit}
    options = ReadOptions.resolve(typed, teacher.read_options)
    if not config.data_path:
        raise ConfigError("--data_path is required: the texts (labelled or not) the student learns from")
    texts, given = [], []
    for item in iter_items(config.data_path, options):
        texts.append(item.text)
        given.append(None if item.label is None else normalize_label(teacher.task, item.label, item.where))
    if len(texts) < 4:
        raise DataError(f"{config.data_path}: {len(texts)} texts; distillation needs at least 4 (a few hundred "
                        f"or more to learn from)")
    return texts, given, config.data_path


def _split(task: str, decided: list, config: TrainConfig, seed: int, path: str) -> tuple[list[int], list[int]]:
    """Train and validation rows, stratified by the teacher's decisions the task's way."""
    from ..data.splits import split_for_task

    if config.validation_path:
        raise ConfigError("distillation splits --data_path by the teacher's decisions; drop --validation_path")
    # the split functions carry texts along; record numbers stand in for them, so the rows come back
    rows = TextData([str(i) for i in range(len(decided))], list(decided), path)
    train, validation = split_for_task(task, rows, config.validation_split, seed)
    return [int(t) for t in train.texts], [int(t) for t in validation.texts]


def _student(settings: DistillSettings, teacher: ModelContract, config: TrainConfig):
    """The student model with the teacher's labels; with --student_layers, K layers of its source kept."""
    from ..model.loading import load_model
    from ..tasks.targets import PROBLEM_TYPES

    labels = LabelSet(tuple(teacher.labels))
    model = load_model(settings.student or settings.teacher, len(labels), labels.id2label, config.model_overrides(),
                       config.trust_remote_code, config.allow_pickle, PROBLEM_TYPES[teacher.task])
    if settings.student_layers is None:
        return model, None
    kept = shrink_layers(model, settings.student_layers)
    logger.info("student: layers %s of %s kept", kept, settings.student or settings.teacher)
    return model, kept


def _contract(config: TrainConfig, explicit: frozenset[str], teacher: ModelContract, settings: DistillSettings,
              precision: str, kept: list[int] | None, path: str, train_labels: list, val_labels: list):
    """The teacher's labels, task, read options and decision rule; the student's own reading settings."""
    from .. import __version__

    length = config.max_length if "max_length" in explicit else teacher.max_length
    truncation = config.truncation if "truncation" in explicit else teacher.truncation
    base = settings.student or settings.teacher
    return ModelContract(
        labels=tuple(teacher.labels), max_length=length, task=teacher.task, truncation=truncation,
        decision=teacher.decision, target_mean=teacher.target_mean, target_std=teacher.target_std,
        read_options=dict(teacher.read_options or asdict(ReadOptions())),
        info={"m3cls_version": __version__, "base_model": base, "precision": precision, "method": "distill",
              "distillation": {"teacher": settings.teacher, "student": settings.student or "the teacher's encoder",
                               "layers_kept": kept, "temperature": settings.distill_temperature,
                               "label_weight": settings.label_weight},
              "data": {"train_path": path, "validation_path": f"{config.validation_split:g} of the data",
                       "train_texts": len(train_labels), "validation_texts": len(val_labels),
                       "train_counts": label_counts(teacher.task, train_labels),
                       "validation_counts": label_counts(teacher.task, val_labels)}})


def _train(model, args, tokenizer, train_set, val_set, contract: ModelContract, settings: DistillSettings):
    from .run import train_interruptibly
    from .trainer import build_trainer

    labels = LabelSet(tuple(contract.labels))
    trainer = build_trainer(model, args, tokenizer, train_set, val_set, labels, contract,
                            compute_metrics=_metrics(contract, labels),
                            compute_loss=distill_loss(contract.task, settings.distill_temperature))
    logger.info("distilling %s into %s on %d texts (%d validation), temperature %g", settings.teacher,
                contract.info["base_model"], len(train_set), len(val_set), settings.distill_temperature)
    return train_interruptibly(trainer, args)


def _metrics(contract: ModelContract, labels: LabelSet):
    """The validation log's scores against the soft targets' decisions: the task's own compute_metrics (which
    reads soft targets: sigmoids rounded, standardised values), else, for a task that keeps the Trainer's
    class-id metrics, the soft targets' most probable class."""
    from ..metrics.classification import classification_report, flat_metrics

    scale = TargetScale(contract.target_mean or 0.0, contract.target_std or 1.0)
    hooks = get_task(contract.task).training_hooks("none", [], labels, scale)
    if hooks.get("compute_metrics"):
        return hooks["compute_metrics"]

    def compute(eval_pred) -> dict:
        truth = np.asarray(eval_pred.label_ids).argmax(axis=-1)
        predicted = np.asarray(eval_pred.predictions).argmax(axis=-1)
        return flat_metrics(classification_report(truth, predicted, labels.names))

    return compute


def _finish(config: TrainConfig, args, trainer, val_set, contract: ModelContract, truth: list, against: str):
    """Re-fit the temperature (and thresholds) on the student's validation split, score and save."""
    from .save import save_final
    from .scoring import metrics_of

    logits = np.asarray(trainer.predict(val_set).predictions, dtype=np.float64)
    evaluation, contract, rows = _score(contract, logits, truth)
    contract = contract.with_info(
        training=trainer.m3cls_training, metrics=metrics_of(evaluation), scored_against=against,
        calibration=evaluation.get("calibration"),
        history=[e for e in trainer.state.log_history if "loss" in e or any(k.startswith("eval_") for k in e)])
    if contract.thresholds:
        logger.info("student thresholds re-fitted on its validation split: %s",
                    ", ".join(f"{k} {v:.3f}" for k, v in contract.thresholds.items()))
    logger.info("student scored against %s on its validation split", against)
    if trainer.is_world_process_zero():
        save_final(trainer, args.output_dir, contract, evaluation if config.report else None, validation=rows)
    return TrainResult(args.output_dir, contract.info["metrics"], contract, logits)


def _score(contract: ModelContract, logits: np.ndarray, truth: list):
    """(evaluation, contract with its temperature and thresholds, validation rows) of the student."""
    from ..metrics.classification import softmax
    from .scoring import score_and_calibrate

    task, labels = get_task(contract.task), LabelSet(tuple(contract.labels))
    y = task.truth(truth, labels, "the validation split")
    if task.has_ladder:
        evaluation = score_and_calibrate(logits, y, labels.names)
        temperature = evaluation["after"]["temperature"]
        return evaluation, contract.replace(temperature=temperature), (softmax(logits, temperature), y)
    scale = TargetScale(contract.target_mean or 0.0, contract.target_std or 1.0)
    return task.score_validation(logits, y, labels, scale, contract)

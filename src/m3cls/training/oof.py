"""``m3cls train --calibrate_on oof``: the temperature fitted on out-of-fold probabilities of the training texts.

A temperature (or a threshold) fitted on a 10 % validation split rests on a few hundred texts; out-of-fold
probabilities cover every training text. The run trains the final model as usual, then cross-validates the
same settings over its training texts (``--calibrate_folds`` folds, stratified, grouped with
``--group_column``: :func:`m3cls.training.crossval.run_cv`), writes the folds' ``oof_predictions.jsonl`` and
``cv.json`` into ``OUTPUT_DIR/oof/`` (an ``m3cls cv`` folder, so ``m3cls calibrate --from_cv OUTPUT_DIR/oof``
can choose a decision rule on it later), and fits the temperature on them as ``m3cls calibrate --from_cv``
does. ``info["calibration"]`` records the source, the folds, and the validation split's ECE under both
temperatures. The out-of-fold probabilities come from the fold models, which saw less data than the final
one: that is what the record says.

Example::

    >>> from m3cls.training import TrainConfig, train
    >>> result = train(TrainConfig(model_name_or_path="bundled", data_path="train.json", method="probe",
    ...                            calibrate_on="oof"), {"output_dir": "runs/oof"})         # doctest: +SKIP
    >>> result.contract.info["calibration"]["source"]                                    # doctest: +SKIP
    'out-of-fold'
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from ..errors import ConfigError
from .config import TrainResult, refuse_oof
from .request import TrainRequest

logger = logging.getLogger(__name__)

#: the folder inside the model folder that holds the folds' out-of-fold predictions (an ``m3cls cv`` folder)
OOF_DIR = "oof"


def train_calibrated_on_oof(request: TrainRequest, train_once, prepared=None, callbacks: tuple = ()) -> TrainResult:
    """Train with ``train_once`` (:func:`m3cls.training.run.train_once`), then fit the temperature on out-of-fold
    probabilities of the training texts and save it into the model's ``m3cls.json`` and card."""
    from ..inference import distributed
    from ..tasks import get_task
    from .inputs import prepare_data

    config = request.config
    if distributed.world()[1] > 1:
        raise ConfigError("--calibrate_on oof runs in one process; start it without torchrun, or run 'm3cls cv' "
                          "and 'm3cls calibrate --from_cv' after training")
    from .hub import push_folder, take_hub_target

    values = dict(request.values)
    hub = take_hub_target(values)  # uploaded once, after the temperature is saved; never by the run or its folds
    request = request.replace(values=values)
    prepared = prepared or prepare_data(config, request.seed)
    refuse_oof(get_task(prepared.task))  # before any training
    result = train_once(request, prepared, callbacks)  # train_config.yaml keeps calibrate_on: oof
    result = _calibrate(request, prepared, result)
    if hub is not None:
        push_folder(result.output_dir, hub)
    return result


def _calibrate(request: TrainRequest, prepared, result: TrainResult) -> TrainResult:
    """Cross-validate over the training texts, fit the temperature on the out-of-fold probabilities, save it."""
    from ..evaluation.calibrate import oof_temperature, save_contract
    from ..metrics.calibration import evaluate_logits
    from ..metrics.classification import softmax
    from .crossval import OOF_FILE, CVSettings, run_cv, write_cv
    from .save import write_training_report, write_validation_predictions
    from .scoring import metrics_of

    folder = os.path.join(result.output_dir, OOF_DIR)
    k = request.config.calibrate_folds
    logger.info("--calibrate_on oof: %d folds over the %d training texts", k, len(prepared.train))
    folds = request.replace(config=dict(calibrate_on="validation", validation_path=None, report=False,
                                        baseline=False, ladder=False, overwrite_output_dir=True),
                            values=dict(output_dir=folder, resume_from_checkpoint=None))  # not the run's checkpoint
    cv = run_cv(folds, settings=CVSettings(folds=k), what="--calibrate_on oof", data=prepared.train,
                labels=prepared.labels)
    write_cv(folder, cv, report=False)
    names = prepared.labels.names
    y_val = np.asarray(prepared.labels.encode(prepared.validation.labels, prepared.validation.path))
    earlier = result.contract.info.get("calibration") or {}
    contract, lines = oof_temperature(result.contract, np.log(np.clip(cv.probabilities, 1e-12, 1.0)), cv.y,
                                      os.path.join(folder, OOF_FILE), folds=k, texts=int(len(cv.y)))
    temperature = contract.temperature
    evaluation = evaluate_logits(result.validation_logits, y_val, names, temperature)
    held_out = {"path": prepared.validation.path, "texts": int(len(y_val)),
                "validation_fitted_temperature": result.contract.temperature,
                "ece_validation_fitted": earlier.get("ece_after"),
                "ece_out_of_fold_fitted": evaluation["after"]["ece"]}
    # the validation scores under the saved temperature (accuracy and F1 do not change; ECE and log-loss do)
    contract = contract.with_info(calibration=dict(contract.info["calibration"], validation=held_out),
                                  metrics=dict(result.contract.info["metrics"], **metrics_of(evaluation)))
    save_contract(result.output_dir, contract)
    if request.config.report:  # its reliability diagram and ECE at the temperature the model now carries
        evaluation["calibration"] = dict(contract.info["calibration"], temperature=temperature,
                                         ece_after=evaluation["after"]["ece"])
        write_training_report(result.output_dir, evaluation, contract)
    write_validation_predictions(result.output_dir, softmax(result.validation_logits, temperature), y_val, names)
    for line in lines:
        logger.info("--calibrate_on oof: %s", line)
    logger.info("--calibrate_on oof: validation ECE %.4f at the validation-fitted temperature %.4f, %.4f at the "
                "out-of-fold one (saved)", held_out["ece_validation_fitted"] or float("nan"),
                held_out["validation_fitted_temperature"], held_out["ece_out_of_fold_fitted"])
    return dataclasses.replace(result, contract=contract, metrics=contract.info["metrics"])

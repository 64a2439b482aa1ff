"""``m3cls.calibrate``: refit a model's temperature (and thresholds) on labelled data, or choose a decision
rule for a target, and save it into the model's ``m3cls.json`` and card; the command calls the same code.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..errors import ConfigError
from ..metrics.classification import softmax
from ..metrics.decisions import (
    INTERVAL_METHOD,
    METRICS,
    DecisionRule,
    check_abstain,
    check_target,
    choose_threshold,
    summarize,
)
from .evaluate import labelled_data, load_model, truth_of


def fit_temperature(clf, logits: np.ndarray, truth: np.ndarray, data_path: str):
    """(contract with the refitted temperature and thresholds, lines to print): the task's own calibration."""
    changes, info, lines = clf.task.calibrate(logits, truth, clf.labels.names, clf.temperature,
                                              clf.contract.thresholds, data_path)
    return clf.contract.replace(**changes).with_info(calibration=info), lines


def oof_temperature(contract, logits: np.ndarray, truth: np.ndarray, source: str, **facts):
    """(contract with the temperature fitted on out-of-fold log-probabilities, lines to print): ``calibrate
    --from_cv`` and ``train --calibrate_on oof``. ``info["calibration"]`` records the source (``facts`` add to
    it); a fit the data cannot identify is one error naming ``source``."""
    from ..metrics.calibration import choose_temperature, evaluate_logits

    temperature, note = choose_temperature(logits, truth)
    if note:
        raise ConfigError(f"{source}: cannot fit a temperature: {note}")
    evaluation = evaluate_logits(logits, truth, contract.labels, temperature)
    before, after = evaluation["before"], evaluation["after"]
    contract = contract.replace(temperature=temperature).with_info(calibration={
        "temperature": temperature, "fitted_on": source, "source": "out-of-fold", "note": None,
        "ece_before": before["ece"], "ece_after": after["ece"], "log_loss_before": before["log_loss"],
        "log_loss_after": after["log_loss"], **facts})
    return contract, [f"temperature {temperature:.4f} fitted on the out-of-fold probabilities in {source}",
                      f"ECE (out-of-fold) {before['ece']:.4f} -> {after['ece']:.4f}"]


def operating_point(clf, logits: np.ndarray, truth: np.ndarray, metric: str, value: float, positive_label: str,
                    start: DecisionRule, data_path: str) -> DecisionRule:
    """The rule whose threshold on ``positive_label``'s probability meets ``metric`` (fpr, precision or
    recall) at ``value`` on these texts, with the facts of the choice (achieved value, 95 % interval)."""
    pos = clf.labels.names.index(positive_label)
    scores = softmax(logits, start.temperature)[:, pos]
    choice = choose_threshold(scores, (np.asarray(truth) == pos).astype(int), metric, value, data_path)
    facts = {"metric": metric, "value": value, "achieved": choice["achieved"], "interval": choice["interval"],
             "interval_method": INTERVAL_METHOD, "fitted_on": data_path, "texts": int(len(truth)),
             "positives": choice["positives"], "negatives": choice["negatives"], "long_text": clf.long_text}
    return dataclasses.replace(start, threshold=choice["threshold"], target=facts)


def save_contract(model_path: str, contract) -> None:
    """Write the contract and refresh the model card, so the card's figures follow ``m3cls.json``."""
    from ..model.card import refresh_model_card
    from ..model.contract import write_contract

    write_contract(model_path, contract)
    refresh_model_card(model_path, contract)


def calibrate(model, data, save: bool = True, **options) -> dict:
    """Fit a model's temperature (multi-label: and move its thresholds), or with a target choose a decision rule.

    Args:
        model: a model folder's path (needed when ``save``), or a loaded Classifier.
        data: a labelled file's path (any m3cls format), or a list of ``{"text", "label"}`` records.
        save: write the result into the folder's ``m3cls.json`` and model card; False writes nothing.
        **options: ``target_fpr``, ``target_precision`` or ``target_recall`` with ``positive_label`` (an
            operating point), ``abstain_below`` (abstention); any other key is a read option.

    Returns:
        ``{"contract": the new m3cls.json as a dict, "lines": what the command prints}``, plus ``"decision"``
        (the rule's figures on ``data``) when a rule was chosen.

    Example::

        >>> import m3cls
        >>> m3cls.calibrate("runs/m3", "dev.json", save=False)["contract"]["temperature"]  # doctest: +SKIP
        1.42
    """
    targets = {m: options.pop(f"target_{m}") for m in METRICS if options.get(f"target_{m}") is not None}
    for m in METRICS:
        options.pop(f"target_{m}", None)
    positive, abstain = options.pop("positive_label", None), options.pop("abstain_below", None)
    if save and not isinstance(model, (str, os.PathLike)):
        raise ConfigError("calibrate(save=True) writes into the model folder: give the folder's path, or save=False")
    clf = load_model(model)
    labelled = labelled_data(clf, data, options)
    truth = truth_of(clf, labelled.labels, labelled.path)
    if targets or abstain is not None:
        contract, lines, decision = _rule(clf, labelled, truth, targets, positive, abstain)
    else:
        logits, _ = clf.logits_and_chunks(labelled.texts)
        (contract, lines), decision = fit_temperature(clf, logits, truth, labelled.path), None
    if save:
        save_contract(os.fspath(model), contract)
    out = {"contract": contract.to_dict(), "lines": lines}
    return out if decision is None else {**out, "decision": decision}


def _rule(clf, labelled, truth, targets: dict, positive: str | None, abstain: float | None):
    clf.task.refuse("calibrate_rule")
    if len(targets) > 1 or (targets and positive is None) or (positive is not None and not targets):
        raise ConfigError("give one target_fpr, target_precision or target_recall together with positive_label")
    for metric, value in targets.items():
        check_target(metric, value)
    check_abstain(abstain)
    if positive is not None and positive not in clf.labels.names:
        raise ConfigError(f"positive_label {positive!r} is not a label of the model "
                          f"(labels: {', '.join(clf.labels.names)})")
    start = clf.rule if not targets else DecisionRule(
        temperature=clf.temperature, positive_label=positive, threshold=0.0, abstain_below=clf.rule.abstain_below,
        aggregate=clf.rule.aggregate)
    clf.rule = start
    logits, _ = clf.logits_and_chunks(labelled.texts)
    rule = start
    if targets:
        (metric, value), = targets.items()
        rule = operating_point(clf, logits, truth, metric, value, positive, start, labelled.path)
    if abstain is not None:
        rule = dataclasses.replace(rule, abstain_below=abstain)
    summary = summarize(logits, truth, rule, clf.labels.names)
    contract = clf.contract.replace(decision=rule.to_dict())
    return contract, [f"decision rule chosen on {len(truth)} texts of {labelled.path}"], summary

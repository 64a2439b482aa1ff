"""``m3cls calibrate --from_cv CV_DIR``: the temperature or the operating point from out-of-fold probabilities.

A threshold for FPR 1% chosen on a 10% validation split of 16k texts rests on about 800 negatives (about 8
false positives); the out-of-fold probabilities of ``m3cls cv`` cover every training text. They come from the
fold models, not the final one, which saw more data: the source is recorded in ``info`` so a reader knows.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ..errors import ConfigError


def calibrate_from_cv(a: argparse.Namespace, target: tuple[str, float] | None) -> int:
    """Fit the temperature (no target) or choose the decision rule (a target) on ``a.from_cv``; save them."""
    from ..evaluation.calibrate import oof_temperature
    from ..model.card import refresh_model_card
    from ..model.contract import write_contract
    from ..model.folder import read_contract
    from ..training.crossval import OOF_FILE, read_oof

    if a.data_path or a.abstain_below is not None or a.aggregate is not None or a.report:
        raise ConfigError("--from_cv fits on the out-of-fold probabilities alone; drop --data_path, "
                          "--abstain_below, --aggregate and --report")
    contract = read_contract(a.model_path) if os.path.isdir(a.model_path) else None
    if contract is None:
        raise ConfigError(f"--model_path {a.model_path}: not a model folder written by m3cls (no m3cls.json)")
    contract.task_type.refuse("from_cv")  # cv's out-of-fold probabilities are single-label
    names, logits, y = read_oof(a.from_cv)
    if tuple(names) != tuple(contract.labels):
        raise ConfigError(f"--from_cv {a.from_cv}: its labels ({', '.join(names)}) are not the model's "
                          f"({', '.join(contract.labels)}); cross-validate the same data and labels")
    source = os.path.join(a.from_cv, OOF_FILE)
    contract, lines = (oof_temperature(contract, logits, y, source) if target is None else
                       _operating_point(a, contract, logits, y, names, target, source))
    write_contract(a.model_path, contract)
    refresh_model_card(a.model_path, contract)
    print("\n".join(lines + [f"saved in {os.path.join(a.model_path, 'm3cls.json')} (source: out-of-fold "
                             f"probabilities of {len(y)} texts)"]))
    return 0


def _operating_point(a, contract, logits: np.ndarray, y: np.ndarray, names, target, source: str):
    from ..metrics.classification import softmax
    from ..metrics.decisions import INTERVAL_METHOD, DecisionRule, choose_threshold
    from .operating import check_positive

    check_positive(a.positive_label, names, a.model_path)
    metric, value = target
    pos = list(names).index(a.positive_label)
    scores = softmax(logits, contract.temperature)[:, pos]
    choice = choose_threshold(scores, (y == pos).astype(int), metric, value, source)
    facts = {"metric": metric, "value": value, "achieved": choice["achieved"], "interval": choice["interval"],
             "interval_method": INTERVAL_METHOD, "fitted_on": source, "source": "out-of-fold",
             "texts": int(len(y)), "positives": choice["positives"], "negatives": choice["negatives"],
             "long_text": contract.long_text}
    rule = DecisionRule(temperature=contract.temperature, positive_label=a.positive_label,
                        threshold=choice["threshold"], target=facts)
    lo, hi = choice["interval"]
    return contract.replace(decision=rule.to_dict()), [
        f"{a.positive_label} when its probability >= {choice['threshold']:.6f} (chosen for {metric} "
        f"{'<=' if metric == 'fpr' else '>='} {value:g} on the out-of-fold probabilities in {source})",
        f"  {metric} {choice['achieved']:.4f}, 95% interval {lo:.4f} to {hi:.4f}; recall {choice['recall']:.4f}"]

"""Decision rules a user can defend: an operating point on one label's probability, and abstention.

``m3cls calibrate --target_fpr 0.01 --positive_label GPT`` picks, on labelled held-out data, the lowest
threshold on GPT's probability whose false-positive rate there is at or under 1% (so recall is as high as the
target allows); ``--target_precision`` and ``--target_recall`` work the same way. The rule is saved in the model
contract (``decision``) with the rate it achieved and that rate's 95% Clopper-Pearson interval: the exact
binomial interval, chosen because operating points live where counts are small (a 1% FPR on 400 negatives is 4
texts), where normal-approximation intervals undercover and can even dip below 0.

Applying a rule: the positive label wins when its probability reaches the threshold; otherwise the most likely
other label does. With ``abstain_below P``, a text whose chosen label does not clear its bar (the threshold for
the positive label, P for any other) is ``uncertain``. Probabilities are taken at the temperature the rule was
chosen at, so a later ``--temperature`` changes what is shown, never what is decided.

Example::

    >>> import numpy as np
    >>> scores = np.array([0.95, 0.9, 0.8, 0.3, 0.2, 0.1] * 70)
    >>> y = np.array([1, 1, 0, 1, 0, 0] * 70)
    >>> choice = choose_threshold(scores, y, "fpr", 0.05)
    >>> choice["threshold"] > 0.8, choice["achieved"] <= 0.05, round(choice["recall"], 3)
    (True, True, 0.667)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .classification import softmax

if TYPE_CHECKING:
    from ..model.contract import ModelContract

logger = logging.getLogger(__name__)
METRICS = ("fpr", "precision", "recall")
AGGREGATES = ("mean", "max", "vote")
UNCERTAIN = "uncertain"
CONFIDENCE = 0.95
INTERVAL_METHOD = "Clopper-Pearson exact binomial, 95% two-sided"


def clopper_pearson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact two-sided binomial interval for a rate of ``successes`` out of ``trials``.

    >>> [round(v, 4) for v in clopper_pearson(0, 300)]
    [0.0, 0.0122]
    """
    from scipy.stats import beta

    if trials <= 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def needed_count(metric: str, target: float, confidence: float = CONFIDENCE) -> int:
    """The fewest texts in the rate's denominator for which even a perfect count has a 95% interval on the
    right side of the target: for an FPR, 0 false positives must give an upper bound at or under it.

    >>> needed_count("fpr", 0.01), needed_count("fpr", 0.05), needed_count("recall", 0.95)
    (368, 72, 72)
    """
    alpha = (1 - confidence) / 2
    rate = target if metric == "fpr" else 1 - target
    return int(math.ceil(math.log(alpha) / math.log(1 - rate)))


def check_target(metric: str, target: float) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown target {metric!r} (known: {', '.join(METRICS)})")
    if not isinstance(target, (int, float)) or not 0 < target < 1:
        raise ConfigError(f"--target_{metric} {target!r} must lie strictly between 0 and 1, e.g. 0.01")


def rates(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    """Counts and rates of the rule ``score >= threshold`` against binary truth ``y`` (1 = positive)."""
    flagged = scores >= threshold
    positive = y == 1
    tp, fp = int((flagged & positive).sum()), int((flagged & ~positive).sum())
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return {"tp": tp, "fp": fp, "positives": n_pos, "negatives": n_neg,
            "fpr": fp / n_neg if n_neg else 0.0, "recall": tp / n_pos if n_pos else 0.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0}


def interval_of(metric: str, counts: dict[str, Any]) -> tuple[float, float]:
    """The Clopper-Pearson interval of one rate from its counts."""
    if metric == "fpr":
        return clopper_pearson(counts["fp"], counts["negatives"])
    if metric == "recall":
        return clopper_pearson(counts["tp"], counts["positives"])
    return clopper_pearson(counts["tp"], counts["tp"] + counts["fp"])


def choose_threshold(scores: np.ndarray, y: np.ndarray, metric: str, target: float, where: str = "the data") \
        -> dict[str, Any]:
    """The threshold on ``scores`` that meets ``target`` for ``metric`` on this data with the most recall
    (fpr, precision) or the fewest false positives (recall), with its achieved rates and 95% interval."""
    check_target(metric, target)
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y)
    n_pos, n_neg = int((y == 1).sum()), int((y != 1).sum())
    denominator = n_neg if metric == "fpr" else n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"{where}: has {n_pos} positive and {n_neg} negative texts; an operating point needs "
                        f"both -- give labelled held-out data with texts of every class")
    need = needed_count(metric, target)
    if denominator < need:
        kind = "negative" if metric == "fpr" else "positive"
        raise DataError(f"{where}: {denominator} {kind} texts are too few to show a {metric} "
                        f"{'at or under' if metric == 'fpr' else 'at or over'} {target:g}: even a perfect count "
                        f"needs at least {need} for its 95% interval to reach it -- add held-out data")
    threshold = _pick(scores, y, metric, target, where)
    counts = rates(scores, y, threshold)
    low, high = interval_of(metric, counts)
    return {"metric": metric, "target": float(target), "threshold": float(threshold),
            "achieved": float(counts[metric]), "interval": [low, high], **counts}


def fpr_threshold(negative_scores: np.ndarray, target: float) -> float:
    """The lowest threshold that flags at most ``floor(target * negatives)`` of these negatives' scores."""
    negatives = np.sort(np.asarray(negative_scores, dtype=np.float64))[::-1]
    allowed = int(math.floor(target * len(negatives) + 1e-9))
    if allowed >= len(negatives):
        return float(negatives[-1])
    return float(np.nextafter(negatives[allowed], np.inf))


def auroc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float | None:
    """The chance that a random positive outscores a random negative (ties count half): the Mann-Whitney form
    of the area under the ROC curve, so a group of positives alone can be scored against other negatives.
    None when either side is empty.

    >>> auroc(np.array([0.9, 0.5]), np.array([0.5, 0.1]))
    0.875
    """
    pos, neg = np.asarray(positive_scores, dtype=np.float64), np.sort(np.asarray(negative_scores, np.float64))
    if not len(pos) or not len(neg):
        return None
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def rate_with_interval(successes: int, trials: int) -> dict[str, Any]:
    """A rate, its counts and its 95% Clopper-Pearson interval (rate None when there are no trials)."""
    return {"rate": successes / trials if trials else None, "count": int(successes), "of": int(trials),
            "interval": list(clopper_pearson(successes, trials))}


def _pick(scores: np.ndarray, y: np.ndarray, metric: str, target: float, where: str) -> float:
    if metric == "fpr":
        return fpr_threshold(scores[y != 1], target)
    if metric == "recall":  # the highest threshold that keeps ceil(target * positives) positives
        positives = np.sort(scores[y == 1])[::-1]
        keep = int(math.ceil(target * len(positives) - 1e-9))
        return float(positives[keep - 1])
    # precision: the lowest threshold (most recall) whose precision reaches the target
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], (y[order] == 1)
    last = np.r_[ranked[1:] != ranked[:-1], True]  # the last row of each run of equal scores
    tp, flagged = np.cumsum(hits)[last], np.arange(1, len(ranked) + 1)[last]
    precision = tp / flagged
    good = np.flatnonzero((precision >= target) & (tp > 0))
    if not len(good):
        raise DataError(f"{where}: no threshold reaches precision {target:g} (best {precision[tp > 0].max():.4f})"
                        f"; lower --target_precision or improve the model")
    return float(ranked[last][good[-1]])


@dataclass(frozen=True)
class DecisionRule:
    """The saved decision: an operating point on one label and/or abstention, at one temperature."""

    temperature: float = 1.0
    positive_label: str | None = None
    threshold: float | None = None
    target: dict[str, Any] | None = None
    abstain_below: float | None = None
    aggregate: str = "mean"

    @classmethod
    def from_dict(cls, data: dict[str, Any], labels: Sequence[str], source: str) -> "DecisionRule":
        """Read and check the contract's ``decision`` field; ``source`` names the file in errors."""
        known = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) - known:
            raise ConfigError(f"{source}: invalid decision: expected an object with keys from {sorted(known)}")
        rule = cls(**data)
        rule.check(labels, source)
        return rule

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, labels: Sequence[str], source: str) -> None:
        problems = []
        if self.positive_label is not None and self.positive_label not in labels:
            problems.append(f"positive_label {self.positive_label!r} is not a label ({', '.join(labels)})")
        if (self.positive_label is None) != (self.threshold is None):
            problems.append("positive_label and threshold go together")
        if self.threshold is not None and not (_number(self.threshold) and 0 <= self.threshold <= 1):
            problems.append(f"threshold {self.threshold!r} outside [0, 1]")
        if self.abstain_below is not None and not (_number(self.abstain_below) and 0 < self.abstain_below <= 1):
            problems.append(f"abstain_below {self.abstain_below!r} outside (0, 1]")
        if self.aggregate not in AGGREGATES:
            problems.append(f"aggregate {self.aggregate!r} (known: {', '.join(AGGREGATES)})")
        if not (_number(self.temperature) and self.temperature > 0):
            problems.append(f"temperature {self.temperature!r}")
        if problems:
            raise ConfigError(f"{source}: invalid decision: {'; '.join(problems)}")

    @property
    def active(self) -> bool:
        """Whether the rule changes anything beyond the argmax label."""
        return self.threshold is not None or self.abstain_below is not None

    def decide(self, logits: np.ndarray, labels: Sequence[str]) -> list[str]:
        """The decision per row of document logits: a label name or ``uncertain``."""
        probs = softmax(np.asarray(logits), self.temperature)
        pos = labels.index(self.positive_label) if self.positive_label is not None else None
        out = []
        for p in probs:
            if pos is not None and p[pos] >= self.threshold:
                out.append(labels[pos])
                continue
            others = p.copy()
            if pos is not None:
                others[pos] = -1.0
            best = int(others.argmax())
            clears = self.abstain_below is None or p[best] >= self.abstain_below
            out.append(labels[best] if clears else UNCERTAIN)
        return out


def rule_for(contract: "ModelContract", long_text: str, aggregate: str | None = None,
             abstain_below: float | None = None, segments: bool = False) -> DecisionRule:
    """The rule a Classifier applies: the contract's saved one (or none), with this run's overrides.

    Decision rules are for single-label models (one softmax over the labels); this is the one place to gate
    them on the contract's task."""
    task = contract.task_type
    if not task.allows("decision_rule"):
        if contract.decision or aggregate is not None or abstain_below is not None or segments:
            task.refuse("decision_rule")
        return DecisionRule(temperature=contract.temperature)
    if contract.decision:
        base = DecisionRule.from_dict(contract.decision, contract.labels, "m3cls.json")
    else:
        base = DecisionRule(temperature=contract.temperature)
    if segments and long_text != "chunks":
        raise ConfigError("--segments needs --long_text chunks: without windows the only segment is the whole "
                          "text")
    changes: dict[str, Any] = {}
    if aggregate is not None:
        if long_text != "chunks":
            raise ConfigError("--aggregate needs --long_text chunks: it says how windows make one document")
        if aggregate not in AGGREGATES:
            raise ConfigError(f"--aggregate {aggregate!r} is not one of: {', '.join(AGGREGATES)}")
        if aggregate != base.aggregate and base.threshold is not None:
            logger.warning("the saved threshold was chosen for --aggregate %s, not %s; its rates do not carry "
                           "over -- recalibrate with this --aggregate", base.aggregate, aggregate)
        changes["aggregate"] = aggregate
    if abstain_below is not None:
        changes["abstain_below"] = check_abstain(abstain_below)
    rule = dataclasses.replace(base, **changes)
    if long_text == "chunks" and rule.aggregate == "max" and rule.positive_label is None:
        raise ConfigError("--aggregate max asks whether any part of a text is the positive label, and this model "
                          "has none: choose one with 'm3cls calibrate --positive_label LABEL --target_fpr ...'")
    return rule


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_abstain(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise ConfigError(f"--abstain_below {value!r} must be above 0 and at most 1, e.g. 0.8")
    return value


def risk_coverage(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> list[dict[str, float]]:
    """Accuracy among the texts kept when abstaining below each confidence, from most to least confident:
    one point per distinct confidence (at most 200, evenly spread), for the risk-coverage curve."""
    probs = softmax(np.asarray(logits), temperature)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    order = np.argsort(-confidence, kind="stable")
    kept_correct = np.cumsum(correct[order])
    n = len(order)
    cuts = sorted(set(np.linspace(1, n, min(n, 200)).round().astype(int)))
    return [{"coverage": k / n, "accuracy": float(kept_correct[k - 1] / k),
             "abstain_below": float(confidence[order][k - 1])} for k in cuts]


def selective_summary(decisions: list[str], y_true: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Coverage (share not ``uncertain``) and accuracy on the covered texts of a list of decisions."""
    covered = [(d, labels[t]) for d, t in zip(decisions, y_true) if d != UNCERTAIN]
    correct = sum(d == t for d, t in covered)
    return {"coverage": len(covered) / max(1, len(decisions)), "covered": len(covered),
            "accuracy_covered": correct / len(covered) if covered else None}


def summarize(logits: np.ndarray, y_true: np.ndarray, rule: DecisionRule, names: Sequence[str]) -> dict[str, Any]:
    """What a rule does on labelled data: its operating point's counts and rates with 95% intervals (when it
    has a positive label), and the coverage and accuracy of its decisions."""
    y_true = np.asarray(y_true)
    out: dict[str, Any] = {"rule": rule.to_dict()}
    if rule.positive_label is not None:
        pos = list(names).index(rule.positive_label)
        scores = softmax(np.asarray(logits), rule.temperature)[:, pos]
        counts = rates(scores, (y_true == pos).astype(int), rule.threshold)
        out["operating_point"] = {**counts, "intervals": {m: list(interval_of(m, counts)) for m in METRICS},
                                  "interval_method": INTERVAL_METHOD}
    out.update(selective_summary(rule.decide(logits, list(names)), y_true, list(names)))
    return out


def area_under_risk_coverage(points: list[dict[str, float]]) -> float:
    """The mean error rate over the risk-coverage curve's points (lower is better)."""
    return float(np.mean([1 - p["accuracy"] for p in points])) if points else 0.0

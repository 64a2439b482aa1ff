"""m3cls' own training options (the ``m3cls train`` flags beside transformers' TrainingArguments)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..data.readers import ReadOptions
from ..errors import ConfigError
from ..model.contract import LONG_TEXT_MODES, POOLINGS, TRUNCATION_MODES, ModelContract
from ..probe.cache import default_cache_dir

METHODS = ("finetune", "probe")
#: what ``--calibrate_on`` fits the temperature on: the validation split, or out-of-fold probabilities
CALIBRATE_ON = ("validation", "oof")


@dataclass
class TrainConfig(ReadOptions):
    """m3cls' own training options; transformers' ``TrainingArguments`` carry the rest."""

    data_path: str = field(default=None, metadata={
        "help": "Training data: messages JSON/JSONL, JSON/JSONL/CSV/TSV/Parquet with text and label fields, a "
                "datasets save_to_disk folder, or any file the datasets library reads."})
    model_name_or_path: str = field(default="BAAI/bge-m3", metadata={
        "help": "Base model: a Hub name, a local folder, or 'bundled' for the packaged MiniLM."})
    validation_path: str | None = field(default=None, metadata={"help": "Labelled validation file."})
    validation_split: float = field(default=0.1, metadata={
        "help": "Share of the training data held out (stratified, seeded) when no --validation_path."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A datasets name (namespace/name) instead of --data_path, read from the local datasets cache "
                "(offline once cached)."})
    dataset_config: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    train_split: str = field(default="train", metadata={
        "help": "Split to train on (--dataset_name, or a DatasetDict save_to_disk folder)."})
    validation_split_name: str | None = field(default=None, metadata={
        "help": "Split to validate on; default: 'validation' when the dataset has it, else --validation_split."})
    language: str | None = field(default=None, metadata={
        "help": "Language codes of the data for the model card, comma-separated, e.g. 'zh,en'."})
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
    long_text: str = field(default="truncate", metadata={
        "help": "truncate, or chunks: fine-tuning trains on every max_length window of a long text with the "
                "text's label and evaluates per document (mean of window logits); --method probe embeds the "
                "windows and averages them. Saved as the model's prediction policy."})
    stride: int = field(default=0, metadata={"help": "Tokens shared by neighbouring windows (chunks)."})
    class_weights: str = field(default="none", metadata={
        "help": "none, or balanced: weight the loss by inverse class frequency (imbalanced data); multi-label: "
                "a pos_weight per label (texts without it / texts with it)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without a better validation macro-F1 (multi-label: micro-F1; "
                "regression: RMSE)."})
    augment: str | None = field(default=None, metadata={
        "help": "Perturb training texts on the fly (seeded) with these perturbations of 'm3cls stress', "
                "comma-separated (e.g. homoglyphs,zero_width,punctuation_width) or 'all'; the probe adds "
                "perturbed copies, embedded once."})
    augment_prob: float = field(default=0.5, metadata={
        "help": "With --augment: the chance that a training text is perturbed (each time it is drawn; the probe: "
                "that it gets a perturbed copy)."})
    calibrate_on: str = field(default="validation", metadata={
        "help": "What the temperature is fitted on: validation (the validation split), or oof: also run "
                "--calibrate_folds stratified folds (grouped with --group_column) over the training texts and fit "
                "it on their out-of-fold probabilities, as 'm3cls calibrate --from_cv' does, which cover every "
                "training text (single-label; costs --calibrate_folds more fits)."})
    calibrate_folds: int = field(default=5, metadata={
        "help": "With --calibrate_on oof: the number of folds (at least 2)."})
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
    method: str = field(default="finetune", metadata={
        "help": "finetune (train every weight, the default) or probe: embed each text once with the frozen encoder "
                "and fit a small head on the embeddings (minutes on a CPU instead of hours)."})
    probe_head: str = field(default="logreg", metadata={
        "help": "probe head: logreg (logistic regression, default) or mlp (one hidden ReLU layer)."})
    probe_c: float = field(default=1.0, metadata={
        "help": "probe regularisation: logistic regression's C; the MLP's L2 penalty is 1e-4 / C. Smaller is "
                "stronger."})
    probe_hidden: int = field(default=256, metadata={"help": "hidden units of the mlp probe head."})
    pooling: str = field(default="auto", metadata={
        "help": "probe pooling: auto (the encoder's own: a sentence-transformers pooling config, else the first "
                "token), cls, mean or max."})
    embed_backend: str = field(default="torch", metadata={
        "help": "probe embedding: torch (bf16/fp16 where the hardware pays for it), or onnx: the encoder exported "
                "once to a fused dynamic-int8 ONNX graph (cached), each text run alone on the CPU."})
    cache_dir: str = field(default_factory=default_cache_dir, metadata={
        "help": "embedding cache folder (default: $M3CLS_CACHE or ~/.cache/m3cls); 'none' turns it off."})
    ladder: bool = field(default=True, metadata={
        "help": "with --method finetune, also fit the probe on the same split, so the report's ladder shows "
                "TF-IDF, probe and fine-tuning side by side (costs one forward pass over the data)."})
    memory_plan: str = field(default="auto", metadata={
        "help": "auto: before reading the data, estimate the peak memory (weights, gradients, AdamW states, "
                "activations of the longest batch) against 70%% of the RAM (85%% of a GPU's memory) and, if over, "
                "turn on gradient checkpointing, then lower the per-device batch and raise gradient accumulation "
                "(same effective batch); stop if nothing fits. off: run the settings as typed."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Allow training into an existing non-empty --output_dir."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the Hub."})
    allow_pickle: bool = field(default=False, metadata={"help": "Allow pickle (.bin) weights."})

    def read_options(self) -> ReadOptions:
        return ReadOptions(**{f.name: getattr(self, f.name) for f in fields(ReadOptions)})

    def check(self) -> None:
        """Refuse settings that cannot work, before any data or model is loaded."""
        if self.dataset_name and self.data_path:
            raise ConfigError("give either --data_path or --dataset_name, not both")
        if not self.dataset_name and not self.data_path:
            raise ConfigError("--data_path (a data file or folder) or --dataset_name (a cached dataset) is required")
        if self.truncation not in TRUNCATION_MODES:
            raise ConfigError(f"--truncation {self.truncation!r} is not one of: {', '.join(TRUNCATION_MODES)}")
        if self.long_text not in LONG_TEXT_MODES:
            raise ConfigError(f"--long_text {self.long_text!r} is not one of: {', '.join(LONG_TEXT_MODES)}")
        if self.stride < 0 or (self.stride and self.long_text != "chunks"):
            raise ConfigError(f"--stride {self.stride} needs --long_text chunks and must be 0 or more")
        if self.class_weights not in ("none", "balanced"):
            raise ConfigError(f"--class_weights {self.class_weights!r} is not one of: none, balanced")
        from ..tasks.targets import TASK_CHOICES

        if self.task not in TASK_CHOICES:
            raise ConfigError(f"--task {self.task!r} is not one of: {', '.join(TASK_CHOICES)}")
        if self.class_weights != "none" and self.task != "auto":
            from ..tasks import get_task

            get_task(self.task).refuse("class_weights")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"--early_stopping_patience {self.early_stopping_patience} must be at least 1")
        if self.lora_r < 0:
            raise ConfigError(f"--lora_r {self.lora_r} must be 0 (off) or a positive rank such as 8")
        if self.merge_lora and not self.lora_r:
            raise ConfigError("--merge_lora needs --lora_r: there is no LoRA adapter to merge")
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is not one of: {', '.join(METHODS)}")
        if self.method == "probe":
            self._check_probe()
        if self.augment is not None:
            from ..data.perturb import parse_perturbations

            parse_perturbations(self.augment, "--augment")
            if not 0 < self.augment_prob <= 1:
                raise ConfigError(f"--augment_prob {self.augment_prob} must be above 0 and at most 1, e.g. 0.5")
            if self.long_text == "chunks":
                raise ConfigError("--augment perturbs whole texts, and --long_text chunks trains on windows; drop "
                                  "one of them")
        self._check_calibration()
        if self.max_length < 8:
            raise ConfigError(f"--max_length {self.max_length} is too small; use at least 8 tokens")
        self.model_overrides()

    def _check_calibration(self) -> None:
        if self.calibrate_on not in CALIBRATE_ON:
            raise ConfigError(f"--calibrate_on {self.calibrate_on!r} is not one of: {', '.join(CALIBRATE_ON)}")
        if self.calibrate_folds < 2:
            raise ConfigError(f"--calibrate_folds {self.calibrate_folds} must be at least 2, e.g. 5")
        if self.calibrate_on == "oof" and self.task != "auto":
            from ..tasks import get_task

            refuse_oof(get_task(self.task))

    def _check_probe(self) -> None:
        self.head_settings(0).check()
        if self.embed_backend not in ("torch", "onnx"):
            raise ConfigError(f"--embed_backend {self.embed_backend!r} is not one of: torch, onnx")
        if self.pooling not in ("auto", *POOLINGS):
            raise ConfigError(f"--pooling {self.pooling!r} is not one of: auto, {', '.join(POOLINGS)}")
        if self.lora_r or self.merge_lora:
            raise ConfigError("--lora_r/--merge_lora train adapters inside the encoder; --method probe keeps the "
                              "encoder frozen -- drop them or use --method finetune")
        if self.long_text == "chunks" and self.probe_head != "logreg":
            raise ConfigError("--long_text chunks needs --probe_head logreg: prediction averages the windows' "
                              "logits, which equals averaging their embeddings only for a linear head")

    def head_settings(self, seed: int):
        """The probe head's settings (``m3cls.probe.head.HeadSettings``)."""
        from ..probe.head import HeadSettings

        return HeadSettings(self.probe_head, self.class_weights, self.probe_c, self.probe_hidden, seed)

    def embedding_cache(self) -> str | None:
        return None if self.cache_dir in ("", "none", "None") else self.cache_dir

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


def refuse_oof(task) -> None:
    """``--calibrate_on oof`` fits what ``calibrate --from_cv`` fits: refused for a task that refuses that."""
    if not task.allows("from_cv"):
        raise ConfigError(f"--calibrate_on oof {task.refusal('from_cv')}; drop it (the validation split "
                          f"calibrates the model)")


@dataclass
class TrainResult:
    """Where the model went, how it scored on the validation data, and the contract it was saved with."""

    output_dir: str
    metrics: dict
    contract: ModelContract
    validation_logits: np.ndarray | None = None

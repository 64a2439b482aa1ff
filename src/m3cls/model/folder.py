"""A model folder, read once: its kind, its contract and its files, handed to every loader.

One load used to look at the folder five times (the CLI for ``model.onnx``, the contract reader, the loader twice
for a probe head and a LoRA adapter, the ONNX backend for its file); each loader now takes a :class:`ModelFolder`
(or a name, which it reads into one). The rules a loader decides by are methods here, one each: where
``m3cls.json`` is looked for (:meth:`ModelFolder.contract_location`), which weights count as pickle
(:meth:`ModelFolder.check_pickle`), which ONNX file runs (:meth:`ModelFolder.onnx_file`).

Kinds: ``onnx`` (an ``m3cls export`` folder: ``model.onnx`` and no safetensors), ``lora`` (a PEFT adapter),
``probe`` (a frozen encoder and a probe head), ``torch`` (a fine-tuned folder with ``m3cls.json``) and
``transformers`` (a plain Hugging Face classifier folder or a Hub name; its contract is derived from
``config.json`` by :meth:`ModelFolder.contract_for`).

Example::

    >>> folder = ModelFolder.read("runs/bbc")                          # doctest: +SKIP
    >>> folder.kind, folder.contract.labels                           # doctest: +SKIP
    ('torch', ('business', 'entertainment', 'politics', 'sport', 'tech'))
"""

from __future__ import annotations

import functools
import json
import os
import re

from ..errors import ModelLoadError
from .bundled import resolve_model_name
from .contract import CONTRACT_FILE, ModelContract, derive_contract

KINDS = ("torch", "onnx", "probe", "lora", "transformers")
ONNX_FP32_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
ADAPTER_CONFIG = "adapter_config.json"


class ModelFolder:
    """What one model folder (or Hub name) holds, read once; the contract is read on first use."""

    def __init__(self, name: str):
        self.name = name                      # as given (errors quote it)
        self.path = resolve_model_name(name)  # ``bundled`` becomes the packaged folder
        self.is_local = os.path.isdir(self.path)
        self.files = frozenset(os.listdir(self.path)) if self.is_local else frozenset()

    @classmethod
    def read(cls, name: "str | ModelFolder") -> "ModelFolder":
        """The folder behind ``name``; a ModelFolder passes through, so loaders can take either."""
        return name if isinstance(name, ModelFolder) else cls(name)

    def __repr__(self) -> str:
        return f"ModelFolder({self.path!r}, kind={self.kind!r})"

    # -- the contract ----------------------------------------------------------------------------------------
    def contract_location(self) -> str | None:
        """Where ``m3cls.json`` is: in the folder, or in the run folder above a ``checkpoint-N`` folder (only
        there: a stray m3cls.json above a plain Hugging Face folder must not change how that model reads text)."""
        folder = os.path.abspath(self.path)
        parent = [os.path.dirname(folder)] if re.fullmatch(r"checkpoint-[0-9]+", os.path.basename(folder)) else []
        for candidate in (self.path, *parent):
            path = os.path.join(candidate, CONTRACT_FILE)
            if os.path.isfile(path):
                return path
        return None

    @functools.cached_property
    def contract(self) -> ModelContract | None:
        """The folder's contract, or None for a plain Hugging Face folder without ``m3cls.json``."""
        path = self.contract_location()
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelLoadError(f"{path}: cannot read ({e}); delete it or retrain") from None
        return ModelContract.from_dict(data, path)

    def contract_for(self, labels: tuple[str, ...], tokenizer, config) -> ModelContract:
        """The saved contract checked against ``config.json``'s labels, or, for a plain transformers folder,
        the contract derived from its config and tokenizer."""
        contract = self.contract
        if contract is None:
            return derive_contract(labels, tokenizer, config)
        if tuple(contract.labels) != tuple(labels):
            raise ModelLoadError(f"{self.name}: config.json labels ({', '.join(labels)}) differ from m3cls.json's "
                                 f"({', '.join(contract.labels)}); the folder mixes two models -- retrain or "
                                 f"re-export it")
        return contract

    # -- the kind --------------------------------------------------------------------------------------------
    @property
    def has_safetensors(self) -> bool:
        return any(n.endswith(".safetensors") for n in self.files)

    @property
    def is_onnx_export(self) -> bool:
        """An ``m3cls export`` folder: ONNX weights and no torch ones."""
        return ONNX_FP32_FILE in self.files and not self.has_safetensors

    @property
    def is_adapter(self) -> bool:
        """A PEFT LoRA adapter (base model named in ``adapter_config.json`` or ``m3cls.json``)."""
        return ADAPTER_CONFIG in self.files

    @property
    def is_probe(self) -> bool:
        """A probe folder: a frozen encoder plus ``probe_head.safetensors`` (contract head ``probe``)."""
        return self.is_local and self.contract is not None and self.contract.head == "probe"

    @property
    def kind(self) -> str:
        """One of ``KINDS`` (see the module docstring)."""
        if self.is_onnx_export:
            return "onnx"
        if self.is_adapter:
            return "lora"
        if self.is_probe:
            return "probe"
        return "torch" if self.contract is not None else "transformers"

    # -- the files -------------------------------------------------------------------------------------------
    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def check_pickle(self, allow_pickle: bool) -> None:
        """Refuse a folder whose only weights are pickle files (they can run code when loaded) unless allowed."""
        if allow_pickle or not self.is_local:
            return
        names = self.files
        model_safe = any(n.endswith(".safetensors") and not n.startswith("adapter_model") for n in names)
        pickles = [n for n in names if n.startswith("pytorch_model") and n.endswith(".bin") and not model_safe]
        if "adapter_model.bin" in names and "adapter_model.safetensors" not in names:
            pickles.append("adapter_model.bin")  # a LoRA adapter is weights too
        if pickles:
            raise ModelLoadError(f"{self.path}: holds only pickle weights ({', '.join(sorted(pickles))}), which can "
                                 f"run arbitrary code when loaded; convert them to safetensors, or pass "
                                 f"--allow_pickle if you trust the source")

    def adapter_base(self) -> str | None:
        """The base model a LoRA adapter was trained on: ``m3cls.json``'s, else the adapter config's."""
        with open(self.file(ADAPTER_CONFIG), encoding="utf-8") as f:
            adapter_base = json.load(f).get("base_model_name_or_path")
        return (self.contract.info.get("base_model") if self.contract else None) or adapter_base

    def onnx_file(self, file: str | None = None) -> str:
        """The ONNX file to run, as a name in the folder: ``file`` if given, else the int8 model when there is
        one, else fp32."""
        if file is None:
            file = ONNX_INT8_FILE if os.path.isfile(self.file(ONNX_INT8_FILE)) else ONNX_FP32_FILE
        if not os.path.isfile(self.file(file)):
            raise ModelLoadError(f"{self.name}: no {file}; make one with 'm3cls export --model_path MODEL --output "
                                 f"{self.name}', or use --backend torch")
        return file

    def dynamic_int8(self, file: str) -> bool:
        """True for an int8 file from before static calibration: its answers depend on the batch."""
        if file != ONNX_INT8_FILE:
            return False
        info = self.contract.info.get("onnx") if self.contract else None
        return not (isinstance(info, dict) and isinstance(info.get("int8"), dict))


def read_contract(folder: str) -> ModelContract | None:
    """The contract of a model folder (or of the run above a checkpoint), or None for a plain HF folder."""
    return ModelFolder.read(folder).contract


def contract_path(folder: str) -> str | None:
    """``m3cls.json`` of a model folder, or of the run folder above a ``checkpoint-N`` folder."""
    return ModelFolder.read(folder).contract_location()

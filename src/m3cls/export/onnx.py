"""ONNX export (with optional static int8 quantization): this module only writes folders.

The onnxruntime runner is ``m3cls.model.backends.OnnxBackend``; the int8 calibration is ``m3cls.export.quantize``.

The exported folder stands alone: ``model.onnx`` (and ``model.int8.onnx`` with ``--quantize int8``), the
tokenizer, ``config.json`` with the labels, and ``m3cls.json``. Inputs are ``input_ids`` and
``attention_mask`` only (XLM-RoBERTa takes no ``token_type_ids``; BERT's default to zeros), with dynamic
batch and sequence axes; the output is ``logits``.

Example::

    >>> from m3cls.export.onnx import export_onnx
    >>> export_onnx("runs/m3", "runs/m3-onnx", quantize="int8",
    ...             calibration_data="train.json")                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import warnings

from ..errors import ConfigError, DataError, OutputError
from ..files import check_replaceable, require, staged_folder
from ..model.backends import ONNX_FP32_FILE as FP32_FILE
from ..model.backends import ONNX_INT8_FILE as INT8_FILE
from ..model.contract import CONTRACT_FILE, derive_contract, write_contract
from ..model.folder import ModelFolder
from ..model.tokens import TextEncoder
from ..tasks.labels import LabelSet
from .graph import data_file, save_graph

CALIBRATION_BATCH = 8
#: a graph whose weights pass this many bytes keeps them in one file beside it, ``model.onnx.data`` (protobuf,
#: which holds an ONNX file, stops at 2 GiB: BGE-M3 in fp32 is 2.27 GB)
EXTERNAL_DATA_BYTES = 1_800_000_000
#: where torch writes its raw graph inside the staging folder (a large one as one file per weight); removed after
RAW_EXPORT_DIR = "torch-export"

logger = logging.getLogger(__name__)


def _need(module: str):
    return require(module, "onnx", "ONNX export")


def export_onnx(model_path: str, output_dir: str, quantize: str | None = None, opset: int = 17,
                overwrite: bool = False, optimize: bool = True, calibration_data: str | None = None,
                calibration_size: int = 128, int8_format: str = "auto") -> dict:
    """Export a trained model folder to a standalone ONNX folder; returns what was written.

    ``optimize`` runs onnxruntime's transformer optimizer, which fuses attention, layer norms and GELU into
    its own kernels (faster on CPU; README, "Speed"); the graph then needs onnxruntime to run.
    ``quantize="int8"`` also writes a static int8 model whose activation scales are calibrated on
    ``calibration_size`` texts of ``calibration_data`` (default: the training data named in m3cls.json), in
    ``int8_format`` (``auto``: the format accurate on this CPU, :func:`m3cls.quantize.resolve_int8_format`).
    """
    from ..model.loading import load_model, load_tokenizer

    _need("onnx")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize!r}: only int8 is supported")
    if quantize == "int8":
        from .quantize import resolve_int8_format

        resolve_int8_format(int8_format)  # a wrong name fails before the model loads
    if calibration_size < 1:
        raise ConfigError(f"--calibration_size must be at least 1, got {calibration_size}")
    check_replaceable(output_dir, "--output", "m3cls ONNX export (m3cls.json and a .onnx file)", holds_export,
                      {"--model_path": model_path})
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise OutputError(f"{output_dir}: exists and is not empty; choose a new --output or pass --overwrite")
    folder = ModelFolder.read(model_path)
    model = load_model(folder, config_overrides={"_attn_implementation": "eager"}).eval()
    tokenizer = load_tokenizer(folder)
    contract = folder.contract or derive_contract(LabelSet.from_config(model.config.id2label).names,
                                                            tokenizer, model.config)
    texts = calibration_texts(contract, calibration_data, calibration_size) if quantize == "int8" else None
    with staged_folder(output_dir) as staging:
        onnx_info = _write_onnx(model, tokenizer, staging, opset, optimize)
        if texts is not None:
            from .quantize import quantize_static_int8

            feeds = calibration_feeds(TextEncoder.from_contract(tokenizer, contract), texts, tokenizer.pad_token_id)
            onnx_info["int8"] = quantize_static_int8(os.path.join(staging, FP32_FILE),
                                                     os.path.join(staging, INT8_FILE), feeds, int8_format,
                                                     large=onnx_info["external_data"])
            onnx_info["files"] += [INT8_FILE] + ([data_file(INT8_FILE)] if onnx_info["external_data"] else [])
            onnx_info.update(file=INT8_FILE, quantize="int8")
        write_contract(staging, contract.with_info(onnx=onnx_info))
    logger.info("exported %s to %s (%s)", model_path, output_dir, ", ".join(onnx_info["files"]))
    return onnx_info


def holds_export(folder: str) -> bool:
    """True when ``folder`` holds what an earlier export wrote (m3cls.json beside a .onnx graph)."""
    names = os.listdir(folder)
    return CONTRACT_FILE in names and any(n.endswith(".onnx") for n in names)


def export_pooled_encoder(module, tokenizer, folder: str, opset: int = 17) -> str:
    """Write an encoder-with-pooling module (its output's ``.logits`` are the text vectors, its ``.config`` the
    encoder's) as a fused, dynamic int8 ONNX folder; returns the int8 graph's path. The probe's ``--embed_backend
    onnx`` embeds with it, each text alone (dynamic scales: README, "Without a GPU")."""
    from .quantize import quantize_dynamic_int8

    _need("onnx")
    with staged_folder(folder) as staging:
        info = _write_onnx(module, tokenizer, staging, opset, True)
        quantize_dynamic_int8(os.path.join(staging, FP32_FILE), os.path.join(staging, INT8_FILE),
                              large=info["external_data"])
        for name in (FP32_FILE, data_file(FP32_FILE)):  # only the int8 graph runs
            if os.path.exists(os.path.join(staging, name)):
                os.remove(os.path.join(staging, name))
    return os.path.join(folder, INT8_FILE)


def calibration_texts(contract, path: str | None, size: int) -> list[str]:
    """Up to ``size`` texts sampled evenly (a fixed-seed reservoir) from the calibration file."""
    from ..data.readers import ReadOptions, iter_items

    if path and not os.path.isfile(path):
        raise ConfigError(f"--calibration_data {path}: file not found; give a file of training texts")
    recorded = (contract.info.get("data") or {}).get("train_path")
    path = path or recorded
    if not path or not os.path.isfile(path):
        where = f"the training data in m3cls.json ({recorded}) is not there" if recorded else \
            "m3cls.json names no training data"
        raise ConfigError(f"--quantize int8 calibrates activation scales on training texts, and {where}; pass "
                          f"--calibration_data FILE (any m3cls format, a few hundred texts are enough)")
    options = ReadOptions.resolve({}, contract.read_options)
    rng, sample = random.Random(0), []
    for seen, item in enumerate(iter_items(path, options)):
        if len(sample) < size:
            sample.append(item.text)
        elif (slot := rng.randrange(seen + 1)) < size:
            sample[slot] = item.text
    if not sample:
        raise DataError(f"{path}: no texts to calibrate int8 on; pass --calibration_data FILE with training texts")
    return sample


def calibration_feeds(encoder: TextEncoder, texts: list[str], pad_id: int | None):
    """onnxruntime feeds of the calibration texts, encoded by the contract's encoder, in padded batches."""
    import numpy as np

    ids = sorted(encoder.encode(texts), key=len)
    for start in range(0, len(ids), CALIBRATION_BATCH):
        batch = ids[start: start + CALIBRATION_BATCH]
        longest = max(len(x) for x in batch)
        input_ids = np.full((len(batch), longest), pad_id or 0, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)], mask[row, : len(x)] = x, 1
        yield {"input_ids": input_ids, "attention_mask": mask}


def _write_onnx(model, tokenizer, staging: str, opset: int, optimize: bool) -> dict:
    """The graph (fused if asked), the tokenizer and config, in ``staging``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    sample = tokenizer(["an example text for export", "another"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "sequence"}
    raw_dir = os.path.join(staging, RAW_EXPORT_DIR)
    os.makedirs(raw_dir)
    raw, final = os.path.join(raw_dir, FP32_FILE), os.path.join(staging, FP32_FILE)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on Python booleans and opset 17's advanced indexing: about the tracing, not the model
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(LogitsOnly(model), (sample["input_ids"], sample["attention_mask"]), raw,
                          input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                                 "logits": {0: "batch"}},
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    large = sum(os.path.getsize(os.path.join(raw_dir, f)) for f in os.listdir(raw_dir)) > EXTERNAL_DATA_BYTES
    fused = optimize_graph(raw, model.config, final, large) if optimize else None
    if not os.path.exists(final):  # not optimized: the raw graph, its weights in one file when large
        import onnx

        save_graph(onnx.load(raw), final, large)
    shutil.rmtree(raw_dir)
    tokenizer.save_pretrained(staging)
    model.config.save_pretrained(staging)
    files = [FP32_FILE] + ([data_file(FP32_FILE)] if large else [])
    return {"file": FP32_FILE, "files": files, "opset": opset, "quantize": None, "fused": fused,
            "external_data": large}


def optimize_graph(path: str, config, target: str | None = None, large: bool = False) -> dict | None:
    """Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer (BERT-family models), into
    ``target`` (default: in place); ``large`` keeps the weights in one file beside it. None, and nothing
    written, for other model types."""
    _need("onnxruntime")
    from onnxruntime.transformers import optimizer

    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if config.model_type not in ("bert", "roberta", "xlm-roberta", "distilbert", "electra") or not heads:
        logger.info("no ONNX fusion for model type %s; keeping the plain graph", config.model_type)
        return None
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        optimized = optimizer.optimize_model(path, model_type="bert", num_heads=heads, hidden_size=hidden)
        if large and target and os.path.exists(os.path.join(os.path.dirname(target), data_file(target))):
            os.remove(os.path.join(os.path.dirname(target), data_file(target)))
        optimized.save_model_to_file(target or path, use_external_data_format=large, all_tensors_to_one_file=True)
        stats = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    finally:
        root.setLevel(level)
    logger.info("ONNX fusion: %s", ", ".join(f"{k} {v}" for k, v in stats.items()) or "none")
    return stats

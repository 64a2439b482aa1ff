"""ONNX export (with optional dynamic int8 quantization): this module only writes folders.

The onnxruntime runner is ``m3cls.backends.OnnxBackend``.

The exported folder stands alone: ``model.onnx`` (and ``model.int8.onnx`` with ``--quantize int8``), the
tokenizer, ``config.json`` with the labels, and ``m3cls.json``. Inputs are ``input_ids`` and
``attention_mask`` only (XLM-RoBERTa takes no ``token_type_ids``; BERT's default to zeros), with dynamic
batch and sequence axes; the output is ``logits``.

Example::

    >>> from m3cls.export import export_onnx
    >>> export_onnx("runs/m3", "runs/m3-onnx", quantize="int8")          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os

from .backends import ONNX_FP32_FILE as FP32_FILE
from .backends import ONNX_INT8_FILE as INT8_FILE
from .contract import derive_contract, read_contract, write_contract
from .errors import ConfigError, OutputError
from .files import require, staged_folder
from .labels import LabelSet

logger = logging.getLogger(__name__)


def _need(module: str):
    return require(module, "onnx", "ONNX export")


def export_onnx(model_path: str, output_dir: str, quantize: str | None = None, opset: int = 17,
                overwrite: bool = False, optimize: bool = True) -> dict:
    """Export a trained model folder to a standalone ONNX folder; returns what was written.

    ``optimize`` runs onnxruntime's transformer optimizer, which fuses attention, layer norms and GELU into
    its own kernels (faster on CPU; README, "Speed"); the graph then needs onnxruntime to run.
    """
    from .modeling import load_model, load_tokenizer

    _need("onnx")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize!r}: only int8 is supported")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise OutputError(f"{output_dir}: exists and is not empty; choose a new --output or pass --overwrite")
    model = load_model(model_path, config_overrides={"_attn_implementation": "eager"}).eval()
    tokenizer = load_tokenizer(model_path)
    contract = read_contract(model_path) or derive_contract(LabelSet.from_config(model.config.id2label).names,
                                                            tokenizer, model.config)
    with staged_folder(output_dir) as staging:
        onnx_info = _write_onnx(model, tokenizer, staging, quantize, opset, optimize)
        write_contract(staging, contract.with_info(onnx=onnx_info))
    logger.info("exported %s to %s (%s)", model_path, output_dir, ", ".join(onnx_info["files"]))
    return onnx_info


def export_pooled_encoder(module, tokenizer, folder: str, opset: int = 17) -> str:
    """Write an encoder-with-pooling module (its output's ``.logits`` are the text vectors, its ``.config`` the
    encoder's) as a fused, dynamic int8 ONNX folder; returns the int8 graph's path. The probe's ``--embed_backend
    onnx`` embeds with it."""
    _need("onnx")
    with staged_folder(folder) as staging:
        _write_onnx(module, tokenizer, staging, "int8", opset, True)
        os.remove(os.path.join(staging, FP32_FILE))  # only the int8 graph runs
    return os.path.join(folder, INT8_FILE)


def _write_onnx(model, tokenizer, staging: str, quantize: str | None, opset: int, optimize: bool) -> dict:
    """The graph (fused if asked), its int8 twin if asked, the tokenizer and config, in ``staging``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    sample = tokenizer(["an example text for export", "another"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(LogitsOnly(model), (sample["input_ids"], sample["attention_mask"]),
                          os.path.join(staging, FP32_FILE), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                                 "logits": {0: "batch"}},
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    files = [FP32_FILE]
    fused = optimize_graph(os.path.join(staging, FP32_FILE), model.config) if optimize else None
    if quantize == "int8":
        quantize_int8(os.path.join(staging, FP32_FILE), os.path.join(staging, INT8_FILE))
        files.append(INT8_FILE)
    tokenizer.save_pretrained(staging)
    model.config.save_pretrained(staging)
    return {"file": files[-1], "files": files, "opset": opset, "quantize": quantize, "fused": fused}


def optimize_graph(path: str, config) -> dict | None:
    """Fuse attention/LayerNorm/GELU in place with onnxruntime's transformer optimizer (BERT-family models)."""
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
        optimized.save_model_to_file(path)
        stats = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    finally:
        root.setLevel(level)
    logger.info("ONNX fusion: %s", ", ".join(f"{k} {v}" for k, v in stats.items()) or "none")
    return stats


def quantize_int8(source: str, target: str) -> None:
    """Dynamic int8 quantization of the weights (activations quantized on the fly) through onnxruntime."""
    _need("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantizer logs every tensor on the root logger
    try:
        import onnx

        # fused contrib ops defeat shape inference; their outputs are float
        quantize_dynamic(source, target, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)

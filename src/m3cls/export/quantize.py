"""Static int8 for ONNX models: activation scales fixed from calibration texts, so batches never change a label.

onnxruntime's dynamic int8 quantizes each activation with a scale taken over the whole input at run time
(``DynamicQuantizeLinear``), so in a batch one text's result depends on its neighbours. Static quantization
fixes every scale once, from texts the model was trained on:

1. ``quantize_dynamic`` writes the int8 graph with onnxruntime's fused int8 kernels (``QAttention`` for the
   query/key/value projection, integer matrix products for the rest), weights 8-bit per tensor: int8 (u8s8)
   on CPUs with VNNI, uint8 (u8u8) on CPUs without, where u8s8 products can saturate
   (:func:`m3cls.cpukinds.int8_format`);
2. the fp32 graph runs over the calibration batches and records the range of every tensor that a
   ``DynamicQuantizeLinear`` node quantizes;
3. each ``DynamicQuantizeLinear`` becomes a ``QuantizeLinear`` with that fixed uint8 scale and zero point, the
   same arithmetic as dynamic quantization with a range that no batch can move.

A text's integer products then depend on that text alone; what remains is float rounding in the fp32 parts
(attention softmax, layer norms), which padding can move in the last bits. README, "Speed", has the checks
(no label changes over 10,000 texts in two batch orders) and the accuracy cost.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable

import numpy as np

from ..errors import ConfigError
from ..files import require
from .graph import save_graph

logger = logging.getLogger(__name__)


#: the int8 formats: activations x weights (onnxruntime's names); "auto" is the one accurate on this CPU
INT8_FORMATS = ("auto", "u8s8", "u8u8")


def resolve_int8_format(requested: str = "auto") -> str:
    """``auto`` becomes this CPU's accurate format (u8s8 with VNNI, else u8u8); others are checked."""
    from ..cpukinds import int8_format

    if requested not in INT8_FORMATS:
        raise ConfigError(f"--int8_format {requested!r} is not one of: {', '.join(INT8_FORMATS)}")
    return int8_format() if requested == "auto" else requested


def quantize_static_int8(fp32_path: str, int8_path: str, batches: Iterable[dict], fmt: str = "auto",
                         large: bool = False) -> dict:
    """Write ``int8_path``: the dynamic int8 graph of ``fp32_path`` with scales calibrated on ``batches``.

    ``batches`` yields onnxruntime feeds (``input_ids``, ``attention_mask`` int64 arrays); ``fmt`` is one of
    :data:`INT8_FORMATS`. Returns a summary for ``m3cls.json``: the format, how many activations were
    calibrated, on how many texts. ``large``: the graphs keep their weights in a file beside them (over 2 GiB).
    """
    onnx = require("onnx", "onnx", "int8 quantization")
    fmt = resolve_int8_format(fmt)
    quantize_dynamic_int8(fp32_path, int8_path, fmt, large=large)
    model = onnx.load(int8_path)
    nodes = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
    ranges, texts = _calibrate(fp32_path, [n.input[0] for n in nodes], batches, large)
    if texts == 0:
        raise ValueError("no calibration texts")
    _make_static(model, nodes, ranges)
    save_graph(model, int8_path, large)
    logger.info("int8: %d activation scales calibrated on %d texts; %s", len(nodes), texts, format_note(fmt))
    return {"activations": "static uint8, calibrated (min/max)", "calibrated_tensors": len(nodes),
            "calibration_texts": texts, "weights": "int8" if fmt == "u8s8" else "uint8", "format": fmt,
            "format_reason": format_note(fmt)}


def format_note(fmt: str) -> str:
    """Why a format, in words, for the log and ``m3cls.json``."""
    from ..cpukinds import cpu_kind, has_vnni

    here = f"this CPU ({cpu_kind()}) {'has' if has_vnni() else 'has no'} VNNI"
    if fmt == "u8s8":
        return f"weights int8 (u8s8): accurate on CPUs with VNNI (AVX512-VNNI, AVX-VNNI, AMX); {here}"
    return f"weights uint8 (u8u8): no 16-bit saturation on CPUs without VNNI (AVX2-only); {here}"


def quantize_dynamic_int8(source: str, target: str, fmt: str = "auto", large: bool = False) -> None:
    """Dynamic int8 (weights 8-bit, activation scales taken per input at run time) through onnxruntime.

    ``fmt``: u8s8 (int8 weights) or u8u8 (uint8 weights); ``auto`` is the accurate one on this CPU.
    """
    require("onnxruntime", "onnx", "int8 quantization")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs every tensor (and a pre-processing hint) on the root logger
    try:
        # fused contrib ops defeat shape inference; their outputs are float
        weights = QuantType.QInt8 if resolve_int8_format(fmt) == "u8s8" else QuantType.QUInt8
        quantize_dynamic(source, target, weight_type=weights, use_external_data_format=large,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def _calibrate(fp32_path: str, names: list[str], batches: Iterable[dict], large: bool = False) \
        -> tuple[dict, int]:
    """Min and max of each named tensor over all batches, and the number of texts seen."""
    import tempfile

    import onnx
    import onnxruntime as ort

    model = onnx.load(fp32_path, load_external_data=not large)
    present = {o.name for o in model.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if not large:
        return _ranges(ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]),
                       names, batches)
    # over protobuf's 2 GiB: the graph with the extra outputs goes beside the fp32 graph and reads the same
    # weights file (its tensors still point there), so the 2 GB of weights are neither loaded here nor copied
    handle, path = tempfile.mkstemp(suffix=".calibration.onnx", dir=os.path.dirname(os.path.abspath(fp32_path)))
    os.close(handle)
    try:
        onnx.save_model(model, path)
        return _ranges(ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]), names, batches)
    finally:
        os.remove(path)


def _ranges(session, names: list[str], batches: Iterable[dict]) -> tuple[dict, int]:
    """Run ``session`` over ``batches``: each named output's min and max, and the texts seen."""
    wanted = list(dict.fromkeys(names))
    inputs = {i.name for i in session.get_inputs()}
    low = {n: np.inf for n in wanted}
    high = {n: -np.inf for n in wanted}
    texts = 0
    for feed in batches:
        values = session.run(wanted, {k: v for k, v in feed.items() if k in inputs})
        for name, value in zip(wanted, values):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
        texts += len(feed["input_ids"])
    return {n: (low[n], high[n]) for n in wanted}, texts


def uint8_params(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point of DynamicQuantizeLinear for a range (which always includes 0).

    >>> uint8_params(-1.0, 3.0)
    (0.01568627450980392, 64)
    """
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 or 1.0
    return scale, int(np.clip(round(-low / scale), 0, 255))


def _make_static(model, nodes: list, ranges: dict) -> None:
    """Replace each DynamicQuantizeLinear by a QuantizeLinear with constant scale and zero point."""
    from onnx import helper, numpy_helper

    graph = model.graph
    for node in nodes:
        x, (quantized, scale_name, zero_name) = node.input[0], node.output
        scale, zero = uint8_params(*ranges[x])
        graph.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name))
        graph.initializer.append(numpy_helper.from_array(np.array(zero, dtype=np.uint8), zero_name))
        static = helper.make_node("QuantizeLinear", [x, scale_name, zero_name], [quantized],
                                  name=f"{node.name or x}_static")
        index = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(index, static)


def int8_is_static(path: str) -> bool:
    """True when an int8 ONNX file has no run-time (batch-dependent) activation quantization."""
    onnx = require("onnx", "onnx", "the ONNX backend")
    if not os.path.isfile(path):
        return False
    return not any(n.op_type == "DynamicQuantizeLinear" for n in onnx.load(path, load_external_data=False).graph.node)

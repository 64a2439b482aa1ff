"""Model runners behind one interface: ``backend(input_ids, attention_mask) -> logits``.

Both take int64 arrays padded on the right and return float32 logits, one row per text:
- :class:`TorchBackend` runs a transformers model (bf16 autocast on CPUs that pay for it, half-precision
  weights on GPUs);
- :class:`OnnxBackend` runs a folder written by ``m3cls export`` with onnxruntime.

Inputs are always built by :class:`m3cls.tokens.TextEncoder` from the model contract, never here.
"""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np

from .errors import ConfigError, ModelLoadError
from .files import require

ONNX_FP32_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
BACKENDS = ("torch", "onnx")
WEIGHT_MODES = ("bf16", "autocast")

logger = logging.getLogger(__name__)


class TorchBackend:
    """Runs a transformers model for inference, as fast as the hardware allows without changing labels.

    - ``weights``: on a CPU with bf16 precision, ``"bf16"`` casts the weights once (activations stay bf16
      between layers) and ``"autocast"`` keeps fp32 weights under ``torch.autocast``; on a GPU half-precision
      weights are always used. README, "Speed", has what each measured.
    - ``first_token``: the last encoder layer runs for the first token only (:mod:`m3cls.first_token`), the
      one position a BERT-family classifier reads.
    """

    def __init__(self, model, device, precision: str, *, weights: str = "bf16", first_token: bool = True):
        from .first_token import apply_first_token_shortcut
        from .modeling import autocast_dtype

        if weights not in WEIGHT_MODES:
            raise ConfigError(f"weights {weights!r} is not one of: {', '.join(WEIGHT_MODES)}")
        self.device, self.precision = device, precision
        self.dtype = autocast_dtype(precision)
        self.model = model.to(device).eval()
        self.first_token = first_token and apply_first_token_shortcut(self.model)
        cast = self.dtype is not None and (device.type == "cuda" or weights == "bf16")
        if cast:
            self.model = self.model.to(self.dtype)
        self.weights_cast = cast
        self.autocast = self.dtype is not None and not cast

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        context = torch.autocast(self.device.type, dtype=self.dtype) if self.autocast else contextlib.nullcontext()
        with torch.inference_mode(), context:
            out = self.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                             attention_mask=torch.from_numpy(attention_mask).to(self.device))
        return out.logits.float().cpu().numpy()


class OnnxBackend:
    """Runs an exported model with onnxruntime on the CPU.

    ``per_text`` runs each text alone, unpadded. Only int8 models exported before m3cls calibrated their
    scales (dynamic int8, ``m3cls.json`` without ``onnx.int8``) need it: they quantize activations with a
    scale taken over the whole batch, so in a batch one text's probabilities would depend on its neighbours.
    Static int8 models (:mod:`m3cls.quantize`) and fp32 models run in batches.
    """

    def __init__(self, path: str, threads: int | None = None, per_text: bool = False):
        self.per_text = per_text
        ort = require("onnxruntime", "onnx", "the ONNX backend")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{path}: cannot load the ONNX model ({' '.join(str(e).split())[:160]}); "
                                 f"re-run 'm3cls export'") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if not self.per_text:
            return self._run(input_ids, attention_mask)
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            n = int(mask.sum())  # m3cls pads on the right
            rows.append(self._run(ids[None, :n], mask[None, :n]))
        return np.concatenate(rows)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        return self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})[0]


def load_backend(path: str, kind: str = "torch", *, device: str = "auto", precision: str = "auto",
                 onnx_file: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False):
    """The runner and the model config (for labels) of a model folder, for ``kind`` torch or onnx."""
    if kind == "onnx":
        return _load_onnx(path, onnx_file)
    if kind != "torch":
        raise ConfigError(f"--backend {kind!r} is not one of: {', '.join(BACKENDS)}")
    from .modeling import choose_device, choose_precision, load_model

    model = load_model(path, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    dev = choose_device(device)
    return TorchBackend(model, dev, choose_precision(precision, dev)), model.config


def _load_onnx(folder: str, file: str | None):
    from transformers import AutoConfig

    if file is None:
        file = ONNX_INT8_FILE if os.path.isfile(os.path.join(folder, ONNX_INT8_FILE)) else ONNX_FP32_FILE
    path = os.path.join(folder, file)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{folder}: no {file}; make one with 'm3cls export --model_path MODEL --output "
                             f"{folder}', or use --backend torch")
    return OnnxBackend(path, per_text=_dynamic_int8(folder, file)), AutoConfig.from_pretrained(folder)


def _int8_info(folder: str) -> dict | None:
    """``m3cls.json``'s summary of the static int8 file, or None (no int8, or dynamic int8 from older m3cls)."""
    from .contract import read_contract

    contract = read_contract(folder)
    info = contract.info.get("onnx") if contract else None
    int8 = info.get("int8") if isinstance(info, dict) else None
    return int8 if isinstance(int8, dict) else None


def _dynamic_int8(folder: str, file: str) -> bool:
    """True for an int8 file from before static calibration: its answers depend on the batch.

    Also warns when an int8 file with int8 weights (u8s8) runs on a CPU without VNNI, where its products can
    saturate (:mod:`m3cls.cpukinds`).
    """
    if file != ONNX_INT8_FILE:
        return False
    info = _int8_info(folder)
    from .cpukinds import has_vnni

    if info is not None and info.get("format", "u8s8") == "u8s8" and not has_vnni():
        logger.warning("%s: int8 weights (u8s8) on a CPU without VNNI can saturate and change scores; re-export "
                       "here with 'm3cls export --quantize int8' (u8u8), or use --onnx_file model.onnx", folder)
    return info is None

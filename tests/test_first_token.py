"""The inference fast path: last layer for the first token only, and bf16 weights, keep the model's answers."""

import copy

import numpy as np
import pytest
import torch
from conftest import make_texts


def _model_and_inputs(folder: str):
    from m3cls.model.loading import load_model, load_tokenizer

    model = load_model(folder, 3, {0: "a", 1: "b", 2: "c"}).eval()
    tokenizer = load_tokenizer(folder)
    texts = [t for t, _ in make_texts(12, seed=5)]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="np")
    return model, enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


@pytest.mark.parametrize("fixture", ["tiny_xlmr", "tiny_bert"])
def test_first_token_layer_gives_the_full_models_logits(fixture, request):
    from m3cls.model.backends import TorchBackend
    from m3cls.model.first_token import FirstTokenLayer

    model, ids, mask = _model_and_inputs(request.getfixturevalue(fixture))
    assert mask.min() == 0  # the batch is padded: the mask path is exercised
    full = TorchBackend(copy.deepcopy(model), torch.device("cpu"), "fp32", first_token=False)
    fast = TorchBackend(model, torch.device("cpu"), "fp32")
    assert fast.first_token and not full.first_token
    assert isinstance(fast.model.base_model.encoder.layer[-1], FirstTokenLayer)
    assert np.abs(fast(ids, mask) - full(ids, mask)).max() < 1e-5
    assert np.abs(fast(ids[:1, :5], mask[:1, :5]) - full(ids[:1, :5], mask[:1, :5])).max() < 1e-5


def test_first_token_is_skipped_where_the_layout_is_unknown_or_training(tiny_xlmr):
    from m3cls.model.first_token import apply_first_token_shortcut

    model, _, _ = _model_and_inputs(tiny_xlmr)
    assert apply_first_token_shortcut(model.train()) is False
    model.eval().config.position_embedding_type = "relative_key"
    assert apply_first_token_shortcut(model) is False
    model.config.position_embedding_type = "absolute"
    assert apply_first_token_shortcut(model) is True
    assert apply_first_token_shortcut(model) is False  # never twice


def test_bf16_weights_keep_labels_of_autocast(tiny_xlmr):
    from m3cls.model.backends import TorchBackend

    model, ids, mask = _model_and_inputs(tiny_xlmr)
    autocast = TorchBackend(copy.deepcopy(model), torch.device("cpu"), "bf16", weights="autocast")
    weights = TorchBackend(model, torch.device("cpu"), "bf16", weights="bf16")
    assert weights.autocast is False and autocast.autocast is True
    assert next(weights.model.parameters()).dtype == torch.bfloat16
    assert next(autocast.model.parameters()).dtype == torch.float32
    a, b = autocast(ids, mask), weights(ids, mask)
    assert b.dtype == np.float32 and np.abs(a - b).max() < 0.05

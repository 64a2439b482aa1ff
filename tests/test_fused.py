"""The fused feed-forward product + GELU (m3cls.model.fused) predicts what the model computes unfused."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from m3cls.model import fused
from m3cls.model.backends import TorchBackend
from m3cls.model.loading import load_model

pytestmark = pytest.mark.skipif(not fused.available(), reason="this torch build has no oneDNN fused product")
CPU = torch.device("cpu")


def _inputs(model, seed: int = 0):
    g = np.random.default_rng(seed)
    ids = g.integers(5, model.config.vocab_size, size=(6, 40))
    mask = np.ones_like(ids)
    mask[3:, 25:] = 0  # right padding in half the rows
    return ids, mask


@pytest.fixture(params=["tiny_bert", "tiny_xlmr"])
def model(request):
    return load_model(request.getfixturevalue(request.param), 3, {0: "a", 1: "b", 2: "c"})


def test_fp32_logits_equal_the_unfused_model(model):
    ids, mask = _inputs(model)
    with torch.inference_mode():
        reference = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    backend = TorchBackend(copy.deepcopy(model), CPU, "fp32", first_token=False)
    assert backend.fused == model.config.num_hidden_layers
    np.testing.assert_allclose(backend(ids, mask), reference, rtol=0, atol=2e-5)


def test_bf16_weights_give_the_unfused_labels(model, monkeypatch):
    ids, mask = _inputs(model, seed=1)
    fused_logits = TorchBackend(copy.deepcopy(model), CPU, "bf16", weights="bf16")(ids, mask)
    monkeypatch.setattr(fused, "available", lambda: False)
    plain = TorchBackend(copy.deepcopy(model), CPU, "bf16", weights="bf16")
    assert plain.fused == 0
    plain_logits = plain(ids, mask)
    assert np.abs(fused_logits - plain_logits).max() < 0.05
    assert (fused_logits.argmax(1) == plain_logits.argmax(1)).all()


def test_left_alone_under_autocast_for_training_and_for_other_activations(model, tiny_bert):
    assert TorchBackend(copy.deepcopy(model), CPU, "bf16", weights="autocast").fused == 0  # fp32 weights, bf16 input
    layer = copy.deepcopy(model)
    assert fused.fuse_feed_forward_gelu(layer) == model.config.num_hidden_layers
    assert fused.fuse_feed_forward_gelu(layer) == 0  # once only
    block = next(m for m in layer.modules() if getattr(m, "_m3cls_fused", False))
    x = torch.randn(2, 5, model.config.hidden_size, requires_grad=True)
    block(x).sum().backward()  # with gradients wanted it runs the module's own forward
    assert x.grad is not None
    approximate = load_model(tiny_bert, 2, {0: "a", 1: "b"}, {"hidden_act": "gelu_new"})
    assert fused.fuse_feed_forward_gelu(approximate) == 0


def test_the_fused_block_is_the_exact_gelu_of_the_product(model):
    layer = copy.deepcopy(model)
    fused.fuse_feed_forward_gelu(layer)
    block = next(m for m in layer.modules() if getattr(m, "_m3cls_fused", False))
    x = torch.randn(3, 7, model.config.hidden_size) * 4  # wide enough that tanh's approximation differs by 1e-4
    with torch.inference_mode():
        got = block(x)
        exact = torch.nn.functional.gelu(block.dense(x))
        approximate = torch.nn.functional.gelu(block.dense(x), approximate="tanh")
    assert (exact - approximate).abs().max() > 1e-4
    torch.testing.assert_close(got, exact, rtol=0, atol=1e-5)


def test_a_block_that_does_more_than_gelu_of_the_product_is_left_alone():
    """RoBERTa-PreLayerNorm's intermediate normalizes before ``dense``: fused, it skipped the LayerNorm and changed
    the logits."""
    from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForSequenceClassification

    torch.manual_seed(0)
    config = RobertaPreLayerNormConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, num_labels=3)
    model = RobertaPreLayerNormForSequenceClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1)  # logits far from 0, so a skipped LayerNorm shows
    ids, mask = _inputs(model)
    with torch.inference_mode():
        reference = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    backend = TorchBackend(model, CPU, "fp32", first_token=False)
    assert backend.fused == 0
    np.testing.assert_allclose(backend(ids, mask), reference, rtol=0, atol=1e-4)


def test_a_deep_copy_of_a_fused_model_falls_back_to_its_own_weights(model):
    layer = copy.deepcopy(model)
    fused.fuse_feed_forward_gelu(layer)
    twin = copy.deepcopy(layer)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    block = next(m for m in twin.modules() if getattr(m, "_m3cls_fused", False))
    x = torch.randn(2, 5, model.config.hidden_size)
    with torch.inference_mode():
        assert block(x).abs().max() == 0  # fused: the copy's own (zero) weights
    assert block(x).abs().max() == 0  # gradients wanted: the module's own forward, of the copy, not the original


def test_plain_linears_run_with_their_bias_fused_and_give_the_same_logits(model):
    ids, mask = _inputs(model, seed=2)
    with torch.inference_mode():
        reference = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    backend = TorchBackend(copy.deepcopy(model), CPU, "fp32", first_token=False)
    plain = [m for m in backend.model.modules() if type(m) is torch.nn.Linear]
    assert backend.fused_linears == len(plain) > 0
    assert all(getattr(m, "_m3cls_fused", False) for m in plain)
    np.testing.assert_allclose(backend(ids, mask), reference, rtol=0, atol=2e-5)


def test_a_linear_subclass_and_a_gradient_keep_their_own_forward(model):
    class Adapter(torch.nn.Linear):  # a quantized or adapter layer: its forward is not F.linear
        def forward(self, x):
            return super().forward(x) + 1.0

    net = torch.nn.Sequential(torch.nn.Linear(4, 4), Adapter(4, 4))
    assert fused.fuse_linears(net) == 1 and not getattr(net[1], "_m3cls_fused", False)
    x = torch.randn(2, 4, requires_grad=True)
    net(x).sum().backward()  # gradients wanted: the class's own forward
    assert x.grad is not None
    with torch.inference_mode():
        torch.testing.assert_close(net[0](x.detach()), torch.nn.functional.linear(x.detach(), net[0].weight,
                                                                                  net[0].bias))

"""Training levers change how a step runs, never what it computes (m3cls.training.levers)."""

from __future__ import annotations

import copy

import pytest
import torch

from m3cls.model.loading import load_model
from m3cls.training.levers import keep_embedding_gradient


def _steps(model, batches, accumulation: int, set_to_none: bool = True):
    """Steps with gradient accumulation and clipping, as the Trainer runs them. SGD, not AdamW: Adam divides by
    the gradient's own size, so a parameter whose true gradient is 0 (attention's key bias) turns rounding noise
    into full-size steps, and no tolerance would compare the two runs."""
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.01)
    for i, (ids, labels) in enumerate(batches):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss / accumulation
        loss.backward()
        if (i + 1) % accumulation == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=set_to_none)
    return model


@pytest.fixture
def model_and_batches(tiny_bert):
    model = load_model(tiny_bert, 2, {0: "a", 1: "b"}, {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    rows = model.get_input_embeddings().num_embeddings
    g = torch.Generator().manual_seed(3)
    # repeated ids in a batch: their rows' gradients must add up, not overwrite each other
    batches = [(torch.randint(5, rows, (4, 12), generator=g).repeat(1, 2), torch.tensor([0, 1, 1, 0]))
               for _ in range(6)]
    return model, batches


@pytest.mark.parametrize("set_to_none", [True, False])
def test_kept_embedding_gradient_gives_the_same_weights(model_and_batches, set_to_none):
    model, batches = model_and_batches
    plain = _steps(copy.deepcopy(model), batches, accumulation=2, set_to_none=set_to_none)
    levered = copy.deepcopy(model)
    undo = keep_embedding_gradient(levered, min_rows=0)
    assert undo is not None
    _steps(levered, batches, accumulation=2, set_to_none=set_to_none)
    for (name, a), b in zip(plain.named_parameters(), levered.parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), name
    # the embedding moved at all (the comparison is not of two untouched matrices)
    assert not torch.equal(plain.get_input_embeddings().weight, model.get_input_embeddings().weight)


def test_the_gradient_is_dense_and_one_buffer_for_the_run(model_and_batches):
    model, batches = model_and_batches
    keep_embedding_gradient(model, min_rows=0)
    weight, seen = model.get_input_embeddings().weight, set()
    for ids, labels in batches[:3]:
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
        assert weight.grad.layout == torch.strided
        seen.add(weight.grad.data_ptr())
    assert len(seen) == 1


def test_the_lever_is_left_off_where_it_does_not_apply(model_and_batches):
    model, _ = model_and_batches
    assert keep_embedding_gradient(model) is None  # a tiny vocabulary: a fresh matrix is cheap
    model.get_input_embeddings().weight.requires_grad_(False)
    assert keep_embedding_gradient(model, min_rows=0) is None  # frozen (LoRA): no gradient at all
    model.get_input_embeddings().weight.requires_grad_(True)
    undo = keep_embedding_gradient(model, min_rows=0)
    undo()
    assert model.get_input_embeddings().sparse is False


def test_m3cls_train_keeps_the_gradient_and_learns_the_same(tiny_bert, tmp_path, monkeypatch):
    """Through ``m3cls.train``: the lever is on for a one-process CPU run, off after it, and the model predicts
    as one trained without it (AdamW, dropout, 6 epochs)."""
    from conftest import make_texts, write_json
    from transformers import TrainingArguments

    from m3cls import Classifier, TrainConfig, train
    from m3cls.training import levers

    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(64, seed=2)])
    calls = []
    real = levers.keep_embedding_gradient

    def spy(model, min_rows=None):
        undo = real(model, min_rows)
        calls.append((model, undo))
        return undo

    monkeypatch.setattr(levers, "keep_embedding_gradient", spy)
    probabilities = {}
    for rows in (0, 10 ** 9):
        monkeypatch.setattr(levers, "MIN_ROWS", rows)
        args = TrainingArguments(output_dir=str(tmp_path / f"m{rows}"), num_train_epochs=6, learning_rate=3e-3,
                                 per_device_train_batch_size=8, gradient_accumulation_steps=2, seed=1,
                                 report_to="none")
        folder = train(TrainConfig(model_name_or_path=tiny_bert, data_path=data, max_length=32, precision="fp32",
                                   baseline=False, ladder=False, report=False), args).output_dir
        clf = Classifier.from_pretrained(folder, precision="fp32")
        texts = [t for t, _ in make_texts(20, seed=9)]
        probabilities[rows] = [p.probabilities["GPT"] for p in clf.predict(texts, temperature=1.0)]
    (levered, undo), (_, none) = calls
    assert undo is not None and none is None
    assert levered.get_input_embeddings().sparse is False  # turned off when training ended
    assert probabilities[0] == pytest.approx(probabilities[10 ** 9], abs=1e-4)
    assert max(probabilities[0]) - min(probabilities[0]) > 0.01  # it moved: 100 times the tolerance above


def test_the_lever_is_for_one_cpu_process_only():
    """Off on an accelerator without CUDA (Apple's MPS: no CUDA, yet not the CPU) and under --torch_compile."""
    from types import SimpleNamespace

    from m3cls.training.trainer import _one_cpu_process

    plain = dict(world_size=1, deepspeed=None, fsdp=[], torch_compile=False, use_cpu=False)
    assert _one_cpu_process(SimpleNamespace(device=torch.device("cpu"), **plain))
    assert not _one_cpu_process(SimpleNamespace(device=torch.device("mps"), **plain))
    assert not _one_cpu_process(SimpleNamespace(device=torch.device("cpu"), **dict(plain, torch_compile=True)))
    assert not _one_cpu_process(SimpleNamespace(device=torch.device("cpu"), **dict(plain, world_size=2)))


def test_the_lever_is_turned_off_when_training_raises(tiny_bert, tmp_path, monkeypatch):
    from conftest import make_texts, write_json
    from transformers import TrainerCallback, TrainingArguments

    from m3cls import TrainConfig, train
    from m3cls.training import levers

    class Boom(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            raise RuntimeError("boom")  # a pruned trial or an error, mid-run

    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(24, seed=2)])
    models = []
    real = levers.keep_embedding_gradient
    monkeypatch.setattr(levers, "keep_embedding_gradient",
                        lambda model, min_rows=None: models.append(model) or real(model, 0))
    args = TrainingArguments(output_dir=str(tmp_path / "m"), num_train_epochs=1, per_device_train_batch_size=8,
                             report_to="none")
    with pytest.raises(RuntimeError, match="boom"):
        train(TrainConfig(model_name_or_path=tiny_bert, data_path=data, max_length=32, precision="fp32",
                          baseline=False, ladder=False, report=False), args, callbacks=(Boom(),))
    embedding = models[0].get_input_embeddings()
    assert embedding.sparse is False and not embedding.weight._post_accumulate_grad_hooks

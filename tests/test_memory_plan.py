"""The memory plan's decisions on synthetic budgets, its activation estimate against what autograd keeps, and
the plan in a real run (recorded in m3cls.json; a job that cannot fit stops before its data is read)."""

from __future__ import annotations

import json

import pytest
from conftest import make_texts, write_json

from m3cls.errors import ConfigError
from m3cls.training.memory import GIB, Job, ModelShape, decide, estimate

BGE_M3 = ModelShape(params=568_000_000, linear_params=303_000_000, layers=24, hidden=1024, intermediate=4096,
                    heads=16)
REFERENCE = Job(batch=16, length=512, precision="fp32", checkpointing=False, trainable=BGE_M3.params,
                runtime=GIB, accumulation=2)


def _total(**change) -> int:
    from dataclasses import replace

    return estimate(BGE_M3, replace(REFERENCE, **change))["total"]


def test_a_job_that_fits_runs_as_given():
    plan = decide(BGE_M3, REFERENCE, budget=_total() + 1)
    assert (plan.batch, plan.accumulation, plan.checkpointing, plan.changes) == (16, 2, False, [])
    assert "fits as given" in plan.line()


def test_checkpointing_comes_first():
    plan = decide(BGE_M3, REFERENCE, budget=_total(checkpointing=True) + 1)
    assert (plan.batch, plan.accumulation, plan.checkpointing) == (16, 2, True)
    assert plan.changes == ["gradient checkpointing on"]
    assert plan.estimate["total"] < plan.first_estimate["total"]


def test_then_a_smaller_micro_batch_keeps_the_effective_batch():
    budget = _total(checkpointing=True, batch=4, accumulation=8) + 1  # batch 8 with checkpointing is over it
    plan = decide(BGE_M3, REFERENCE, budget=budget)
    assert (plan.batch, plan.accumulation, plan.checkpointing) == (4, 8, True)
    assert plan.batch * plan.accumulation == 32 and plan.estimate["total"] <= budget
    assert "per-device batch 16 -> 4 with gradient accumulation 2 -> 8" in plan.line()


def test_a_job_that_cannot_fit_stops_with_the_alternatives():
    states = 16 * BGE_M3.params  # weights, gradients and AdamW's two moments: over the budget by themselves
    with pytest.raises(ConfigError, match="--lora_r 16.*--method probe"):
        decide(BGE_M3, REFERENCE, budget=states)


def test_states_scale_with_trainable_parameters_only():
    lora = estimate(BGE_M3, Job(16, 512, "fp32", True, trainable=1_000_000, accumulation=2))
    full = estimate(BGE_M3, Job(16, 512, "fp32", True, trainable=BGE_M3.params, accumulation=2))
    assert lora["weights"] == full["weights"] and lora["optimizer"] == 8_000_000
    assert full["total"] - lora["total"] == 12 * (BGE_M3.params - 1_000_000)


def test_gradients_overlap_activations_only_when_accumulating():
    alone, accumulating = (estimate(BGE_M3, Job(16, 512, "fp32", True, BGE_M3.params, accumulation=k))
                           for k in (1, 2))
    assert accumulating["total"] - alone["total"] == min(alone["gradients"], alone["activations"])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_activation_estimate_matches_what_autograd_keeps(precision):
    # the bytes autograd saves for backward in a real forward pass, against the estimate's activations (and the
    # bf16 weight copies autocast keeps); a 2-layer model of BGE-M3's proportions (heads of 64, i = 4h)
    import torch
    from transformers import AutoModelForSequenceClassification, XLMRobertaConfig

    config = XLMRobertaConfig(vocab_size=200, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=1024, max_position_embeddings=260, attention_probs_dropout_prob=0.0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        saved.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    ids = torch.randint(5, 200, (8, 256))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    kept = sum(v for k, v in saved.items() if k not in params)
    shape = ModelShape(0, sum(m.weight.numel() for m in model.roberta.encoder.modules()
                              if isinstance(m, torch.nn.Linear)), 2, 256, 1024, 4)
    parts = estimate(shape, Job(8, 256, precision, False, 0))
    assert abs(parts["activations"] + parts["autocast_copies"] - kept) / kept < 0.15  # 0.94 and 0.93 measured


def test_the_plan_runs_before_the_data_and_is_recorded(tiny_bert, tmp_path, monkeypatch, capsys):
    from m3cls.cli import main
    from m3cls.training import memory

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setattr(memory, "device_budget", lambda on_gpu: (10_000, "a fake 10 kB budget"))
    args = ["train", "--model_name_or_path", tiny_bert, "--max_length", "32", "--max_steps", "2",
            "--per_device_train_batch_size", "8", "--no_baseline", "--no_report", "--no_ladder"]
    assert main([*args, "--data_path", str(bad), "--output_dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "memory plan:" in err[-1] and "--method probe" in err[-1]  # the plan, not the broken data file

    shape = memory.model_shape(tiny_bert, {})
    job = Job(8, 32, "fp32", False, shape.params, runtime=memory.current_rss() + memory.DATA_ALLOWANCE,
              accumulation=4)
    budget = estimate(shape, replace_batch(job, 2, True))["total"] + 1  # fits at 2 texts with checkpointing
    monkeypatch.setattr(memory, "device_budget", lambda on_gpu: (budget, "a fake budget"))
    monkeypatch.setattr(memory, "current_rss", lambda: job.runtime - memory.DATA_ALLOWANCE)
    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=2)])
    assert main([*args, "--data_path", data, "--output_dir", str(tmp_path / "b"), "--precision", "fp32"]) == 0
    plan = json.loads((tmp_path / "b" / "m3cls.json").read_text())["memory_plan"]
    assert (plan["per_device_train_batch_size"], plan["gradient_accumulation_steps"],
            plan["gradient_checkpointing"]) == (2, 4, True)
    assert plan["measured_peak_gib"] > 0 and plan["estimate_gib"] <= plan["budget_gib"]

    assert main([*args, "--data_path", data, "--output_dir", str(tmp_path / "c"), "--memory_plan", "off"]) == 0
    assert "memory_plan" not in json.loads((tmp_path / "c" / "m3cls.json").read_text())


def replace_batch(job: Job, batch: int, checkpointing: bool) -> Job:
    from dataclasses import replace

    return replace(job, batch=batch, checkpointing=checkpointing)


def test_a_kept_embedding_gradient_lives_through_the_forward_pass(monkeypatch):
    from dataclasses import replace

    from m3cls.training.memory import kept_embedding_gradient

    shape = replace(BGE_M3, largest=250_002 * 1024)
    kept = kept_embedding_gradient(shape, {}, on_gpu=False)
    assert kept == 250_002 * 1024 * 4  # one CPU process: the lever applies
    assert kept_embedding_gradient(shape, {}, on_gpu=True) == 0
    assert kept_embedding_gradient(shape, {"torch_compile": True}, on_gpu=False) == 0
    assert kept_embedding_gradient(replace(shape, largest=30_522 * 1024), {}, on_gpu=False) == 0  # MiniLM's
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert kept_embedding_gradient(shape, {}, on_gpu=False) == 0
    alone = Job(16, 512, "fp32", False, BGE_M3.params, accumulation=1)  # activations larger than the gradients
    assert estimate(shape, replace(alone, kept_gradient=kept))["total"] - estimate(shape, alone)["total"] == kept
    small = replace(alone, checkpointing=True, batch=4)  # activations below the freed gradients: peak at the end
    assert estimate(shape, replace(small, kept_gradient=kept)) == estimate(shape, small)  # of backward either way
    accumulating = replace(alone, accumulation=2)  # gradients already live through the forward pass
    assert estimate(shape, replace(accumulating, kept_gradient=kept)) == estimate(shape, accumulating)

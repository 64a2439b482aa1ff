"""Model loading: the bundled alias, safe defaults, clear failures."""

import os
import shutil

import pytest
import torch

from m3cls.errors import ConfigError, ModelLoadError
from m3cls.model.loading import choose_precision, load_model, resolve_model_name


def test_bundled_alias_is_a_plain_hf_folder():
    folder = resolve_model_name("bundled")
    assert os.path.isfile(os.path.join(folder, "config.json"))
    assert resolve_model_name("some/name") == "some/name"


def test_pickle_weights_are_refused_unless_allowed(tiny_bert, tmp_path):
    from transformers import AutoModel

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    model = AutoModel.from_pretrained(str(folder))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    os.remove(folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"holds only pickle weights .*can run arbitrary code.*--allow_pickle"):
        load_model(str(folder), 2, {0: "a", 1: "b"})
    assert load_model(str(folder), 2, {0: "a", 1: "b"}, allow_pickle=True).config.num_labels == 2


def test_remote_code_stays_off_by_default(tiny_bert, tmp_path):
    import json

    folder = tmp_path / "remote"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    model = load_model(str(folder), 2, {0: "a", 1: "b"})  # the auto_map is ignored: no code runs
    assert type(model).__name__ == "BertForSequenceClassification"


def test_missing_folder_names_the_way_out():
    with pytest.raises(ModelLoadError, match=r"cannot load model '/nowhere/model': no such folder .*"
                                             r"--model_name_or_path bundled"):
        load_model("/nowhere/model", 2, {0: "a", 1: "b"})


def test_precision_choice_on_cpu():
    cpu = torch.device("cpu")
    assert choose_precision("fp32", cpu) == "fp32"
    assert choose_precision("auto", cpu) in ("bf16", "fp32")
    assert choose_precision("fp16", cpu) in ("bf16", "fp32")  # fp16 is a GPU precision
    with pytest.raises(ConfigError, match="--precision 'fp8' is not one of"):
        choose_precision("fp8", cpu)


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend to be a host with 2 CUDA GPUs; record the GPU each process makes its current one."""
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(torch.device("cuda", d)
                                                                            if isinstance(d, int) else d))
    return chosen


@pytest.mark.parametrize("asked", ["auto", "cuda"])
def test_each_torchrun_rank_takes_its_own_gpu(two_gpus, monkeypatch, asked):
    from m3cls.model.loading import choose_device

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert choose_device(asked) == torch.device("cuda", 1)  # not GPU 0, where every rank would stack
    assert two_gpus == [torch.device("cuda", 1)]
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert choose_device(asked) == torch.device("cuda", 0)


def test_a_typed_gpu_or_cpu_wins_over_the_rank(two_gpus, monkeypatch):
    from m3cls.model.loading import choose_device

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert choose_device("cuda:0") == torch.device("cuda", 0)
    assert choose_device("cpu") == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert choose_device("auto") == torch.device("cuda")  # one process: the current GPU, as before
    assert two_gpus == []


def test_one_visible_gpu_per_rank_is_gpu_0(monkeypatch, two_gpus):
    # a launcher that sets CUDA_VISIBLE_DEVICES per process leaves each rank one GPU, numbered 0
    from m3cls.model.loading import choose_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert choose_device("auto") == torch.device("cuda", 0)

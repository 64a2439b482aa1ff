"""Model loading: the bundled alias, safe defaults, clear failures."""

import os
import shutil

import pytest
import torch

from m3cls.errors import ConfigError, ModelLoadError
from m3cls.modeling import choose_precision, load_model, resolve_model_name


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

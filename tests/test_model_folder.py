"""ModelFolder: one read of a model folder gives its kind, its contract and its files; loaders take it."""

import json
import os

import pytest

from m3cls.errors import ModelLoadError
from m3cls.model.folder import ModelFolder

CONTRACT = {"labels": ["GPT", "Human"], "max_length": 32, "format_version": 2}


def _folder(root, name: str, files: dict) -> str:
    folder = root / name
    folder.mkdir(parents=True)
    for file, content in files.items():
        (folder / file).write_text(content if isinstance(content, str) else json.dumps(content))
    return str(folder)


def test_each_kind_is_told_apart(tmp_path):
    plain = _folder(tmp_path, "plain", {"config.json": {}, "model.safetensors": ""})
    torch_run = _folder(tmp_path, "run", {"config.json": {}, "model.safetensors": "", "m3cls.json": CONTRACT})
    probe = _folder(tmp_path, "probe", {"config.json": {}, "model.safetensors": "", "probe_head.safetensors": "",
                                        "m3cls.json": dict(CONTRACT, head="probe", pooling="mean")})
    lora = _folder(tmp_path, "lora", {"config.json": {}, "adapter_model.safetensors": "", "m3cls.json": CONTRACT,
                                      "adapter_config.json": {"base_model_name_or_path": "base/model"}})
    onnx = _folder(tmp_path, "onnx", {"config.json": {}, "model.onnx": "", "m3cls.json": CONTRACT})
    kinds = {name: ModelFolder.read(path).kind for name, path in
             [("plain", plain), ("torch", torch_run), ("probe", probe), ("lora", lora), ("onnx", onnx)]}
    assert kinds == {"plain": "transformers", "torch": "torch", "probe": "probe", "lora": "lora", "onnx": "onnx"}
    assert ModelFolder.read(plain).contract is None
    assert ModelFolder.read(probe).contract.pooling == "mean"
    assert ModelFolder.read(lora).adapter_base() == "base/model"
    assert "model.onnx" in ModelFolder.read(onnx).files


def test_an_export_beside_torch_weights_is_a_torch_folder(tmp_path):
    both = _folder(tmp_path, "both", {"config.json": {}, "model.safetensors": "", "model.onnx": "",
                                      "m3cls.json": CONTRACT})
    assert ModelFolder.read(both).kind == "torch"


def test_a_checkpoint_reads_the_contract_of_its_run(tmp_path):
    _folder(tmp_path, "run", {"m3cls.json": CONTRACT})
    checkpoint = _folder(tmp_path / "run", "checkpoint-5", {"config.json": {}, "model.safetensors": ""})
    folder = ModelFolder.read(checkpoint)
    assert folder.contract_location() == os.path.join(str(tmp_path / "run"), "m3cls.json")
    assert folder.kind == "torch" and folder.contract.labels == ("GPT", "Human")


def test_the_onnx_file_and_the_pickle_rule(tmp_path):
    onnx = ModelFolder.read(_folder(tmp_path, "onnx", {"config.json": {}, "model.onnx": "", "m3cls.json": CONTRACT}))
    assert onnx.onnx_file() == "model.onnx"
    with pytest.raises(ModelLoadError, match=r"no model.int8.onnx; make one with 'm3cls export"):
        onnx.onnx_file("model.int8.onnx")
    int8 = ModelFolder.read(_folder(tmp_path, "int8", {"model.onnx": "", "model.int8.onnx": "",
                                                        "m3cls.json": CONTRACT}))
    assert int8.onnx_file() == "model.int8.onnx" and int8.dynamic_int8("model.int8.onnx")
    pickled = ModelFolder.read(_folder(tmp_path, "pickled", {"config.json": {}, "pytorch_model.bin": ""}))
    with pytest.raises(ModelLoadError, match="holds only pickle weights"):
        pickled.check_pickle(allow_pickle=False)
    pickled.check_pickle(allow_pickle=True)


def test_a_damaged_contract_fails_with_the_file_named(tmp_path):
    folder = ModelFolder.read(_folder(tmp_path, "bad", {"config.json": {}, "m3cls.json": "{not json"}))
    with pytest.raises(ModelLoadError, match=r"bad/m3cls.json: cannot read"):
        folder.kind


def test_loading_a_classifier_reads_the_folder_once(trained_xlmr, monkeypatch):
    """One load reads the folder once (one ModelFolder) and parses m3cls.json once, however many loaders look at it."""
    from m3cls import Classifier
    from m3cls.model import contract as contract_module
    from m3cls.model import folder as folder_module

    parsed, listed = [], []
    from_dict, init = contract_module.ModelContract.from_dict, folder_module.ModelFolder.__init__
    monkeypatch.setattr(contract_module.ModelContract, "from_dict",
                        classmethod(lambda cls, data, source: parsed.append(source) or from_dict(data, source)))
    monkeypatch.setattr(folder_module.ModelFolder, "__init__",
                        lambda self, name: listed.append(name) or init(self, name))
    clf = Classifier.from_pretrained(trained_xlmr, device="cpu", precision="fp32")
    assert clf.contract.labels == ("GPT", "Human")
    assert parsed == [os.path.join(trained_xlmr, "m3cls.json")]
    assert listed == [trained_xlmr]

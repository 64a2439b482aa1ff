"""Issue 25: pickles stay behind --allow_pickle, a stray m3cls.json is ignored, text that is not UTF-8 is an
error (or read with --encoding), and every imported package is declared."""

import ast
import json
import os
import pathlib
import shutil
import sys

import pytest

from m3cls.cli import main
from m3cls.errors import DataError, ModelLoadError

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- loading ------------------------------------------------------------------------------------------------
def test_a_lora_folder_with_only_a_pickled_adapter_needs_allow_pickle(tiny_bert, tmp_path, capsys):
    from m3cls.model.loading import load_model

    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": tiny_bert,
                                                            "peft_type": "LORA"}))
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    shutil.copy(os.path.join(tiny_bert, "config.json"), folder)
    with pytest.raises(ModelLoadError, match=r"pickle weights \(adapter_model.bin\).*--allow_pickle"):
        load_model(str(folder))
    assert main(["predict", "--model_path", str(folder), "--text", "hello"]) == 2
    assert "adapter_model.bin" in capsys.readouterr().err


def test_a_stray_m3cls_json_above_a_plain_folder_is_ignored(trained_xlmr, tiny_bert, tmp_path):
    from m3cls.model.folder import read_contract

    (tmp_path / "m3cls.json").write_text(open(os.path.join(trained_xlmr, "m3cls.json")).read())
    shutil.copytree(tiny_bert, tmp_path / "plain")
    shutil.copytree(tiny_bert, tmp_path / "checkpoint-40")
    assert read_contract(str(tmp_path / "plain")) is None
    assert read_contract(str(tmp_path / "checkpoint-40")).labels == read_contract(trained_xlmr).labels


# -- encodings -----------------------------------------------------------------------------------------------
@pytest.fixture
def latin1_csv(tmp_path):
    path = tmp_path / "fr.csv"
    path.write_bytes("text,label\nun bon caf\u00e9,A\nla cr\u00e8me br\u00fbl\u00e9e,B\n".encode("latin-1"))
    return path


def test_text_that_is_not_utf8_is_one_error_naming_the_file_and_byte(latin1_csv):
    from m3cls.data.readers import ReadOptions, read_labeled

    with pytest.raises(DataError) as error:
        read_labeled(str(latin1_csv), ReadOptions())
    message = str(error.value)
    first = latin1_csv.read_bytes().index(b"\xe9")
    assert first == 21 and message.startswith(f"{latin1_csv}: not valid UTF-8 at byte 21 ")
    assert "--encoding" in message


def test_the_cli_exits_2_on_bytes_that_are_not_utf8(trained_xlmr, latin1_csv, capsys):
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(latin1_csv)]) == 2
    err = capsys.readouterr().err
    assert "not valid UTF-8 at byte 21" in err and "Traceback" not in err


def test_encoding_reads_another_codec_and_a_bom_is_utf8(latin1_csv, tmp_path):
    from m3cls.data.readers import ReadOptions, read_labeled

    data = read_labeled(str(latin1_csv), ReadOptions(encoding="latin-1"))
    assert data.texts == ["un bon caf\u00e9", "la cr\u00e8me br\u00fbl\u00e9e"]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbftext,label\ncaf\xc3\xa9,A\n")
    for encoding in (None, "utf-8", "UTF8"):
        assert read_labeled(str(bom), ReadOptions(encoding=encoding)).texts == ["caf\u00e9"]
    from m3cls.errors import ConfigError

    with pytest.raises(ConfigError, match="--encoding 'klingon'"):
        read_labeled(str(bom), ReadOptions(encoding="klingon"))


def test_a_saved_encoding_does_not_carry_over_to_other_files():
    from m3cls.data.readers import ReadOptions

    assert ReadOptions.resolve({}, {"encoding": "latin-1", "text_column": "t"}) == ReadOptions(text_column="t")


# -- dependencies --------------------------------------------------------------------------------------------
def _declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    names = set()
    for spec in specs:
        name = spec.split(";")[0]
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def test_every_imported_package_is_declared_and_torch_is_at_least_2_6():
    import importlib.metadata as metadata

    modules = set()
    for path in (ROOT / "src" / "m3cls").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                modules.add(node.args[0].value.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"m3cls"}
    owners = metadata.packages_distributions()
    declared = _declared()
    missing = {m for m in modules if not {d.lower().replace("_", "-") for d in owners.get(m, [m])} & declared}
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
    tomllib = pytest.importorskip("tomllib")
    torch_spec = [s for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                  if s.startswith("torch")]
    assert torch_spec and ">=2.6" in torch_spec[0] and "<3" in torch_spec[0]

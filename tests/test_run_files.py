"""Runs from a config file and the files a run leaves: train_config.yaml, the model card, the Hub upload,
TensorBoard events."""

import glob
import json
import os

import pytest
import yaml
from conftest import TRAIN_FLAGS

from m3cls.cli import main
from m3cls.cli.common import parse_train_args

QUICK = [*TRAIN_FLAGS, "--max_steps", "4", "--no_baseline", "--report", "false"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_config_file_runs_and_train_config_yaml_reruns_it(tiny_xlmr, messages_file, tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({"model_name_or_path": tiny_xlmr, "data_path": messages_file, "max_length": 64,
                                   "learning_rate": "3e-3", "seed": 1, "report_to": ["none"], "max_steps": 4,
                                   "per_device_train_batch_size": 8,  # transformers' default, not m3cls' (16)
                                   "baseline": False, "report": False, "precision": "fp32",
                                   "search_space": {"seed": {"choices": [1, 2]}}}))
    out = str(tmp_path / "a")
    argv = ["--config", str(run), "--output_dir", out, "--seed", "7"]  # typed flags override the file
    assert main(["train", *argv]) == 0
    saved = os.path.join(out, "train_config.yaml")
    settings = yaml.safe_load(open(saved))
    assert settings["seed"] == 7 and settings["learning_rate"] == 3e-3 and settings["data_path"] == messages_file
    assert settings["per_device_train_batch_size"] == 8
    assert "hub_token" not in settings and "use_cpu" not in settings and "config" not in settings
    assert json.load(open(os.path.join(out, "m3cls.json")))["settings"] == settings

    first, again = parse_train_args(argv)[0], parse_train_args(["--config", saved])[0]
    assert first.config == again.config and first.values == again.values  # the same TrainConfig and values
    rerun = str(tmp_path / "b")
    assert main(["train", "--config", saved, "--output_dir", rerun]) == 0
    assert yaml.safe_load(open(os.path.join(rerun, "train_config.yaml"))) == dict(settings, output_dir=rerun)


@pytest.mark.parametrize("text,name,message", [
    ("lerning_rate: 1.0e-4\n", "run.yaml", "run.yaml: unknown key 'lerning_rate'; did you mean 'learning_rate'?"),
    ("learning_rate: [1e-4\nseed: 3\n", "run.yaml", "run.yaml: line 2, column 5: "),
    ('{"seed": 3,\n  "max_length": }\n', "run.json", "run.json: line 2, column 17: Expecting value"),
    ("- seed\n", "run.yaml", "the top level is a list, expected a mapping"),
    ("seed: many\n", "run.yaml", "run.yaml: seed: invalid int value: 'many'"),
])
def test_bad_config_file_is_one_line_and_writes_nothing(tmp_path, capsys, text, name, message):
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["train", "--config", str(path), "--output_dir", str(out)]) == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("m3cls train: error: ") and message in err[0], err


@pytest.mark.parametrize("example", ["train.yaml", "train_bge_m3.yaml"])
def test_examples_parse(example):
    request, _ = parse_train_args(["--config", os.path.join(ROOT, "examples", example)])
    config, values = request.config, request.values
    assert config.data_path and values["output_dir"] and values["learning_rate"] > 0


def test_model_card_metadata_parses_back_with_huggingface_hub(trained_xlmr):
    from huggingface_hub import ModelCard

    card = ModelCard.load(os.path.join(trained_xlmr, "README.md"))
    meta = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert card.data.base_model is None  # a local folder is not a Hub id; the text names it instead
    scores = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert scores == {"accuracy": round(meta["metrics"]["accuracy"], 4), "f1": round(meta["metrics"]["macro_f1"], 4)}
    assert all(r.task_type == "text-classification" and r.dataset_split == "validation" for r in card.data.eval_results)
    text = card.text
    for heading in ("## Labels", "## Validation scores", "## Calibration", "## Baseline comparison", "## Training",
                    "## Data", "## Usage"):
        assert heading in text
    assert "| GPT | " in text and "TF-IDF + logistic regression" in text and "AutoModelForSequenceClassification" in text


def test_model_card_base_model_and_language(tmp_path):
    from huggingface_hub import ModelCard

    from m3cls.model.card import write_model_card
    from m3cls.model.contract import ModelContract

    contract = ModelContract(labels=("a", "b"), max_length=128, info={
        "base_model": "bundled", "settings": {"language": "zh, en", "hub_model_id": "me/cls"}})
    card = ModelCard.load(write_model_card(str(tmp_path), contract))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and card.data.language == ["zh", "en"]
    assert card.data.eval_results is None and "# me/cls" in card.text


def test_push_to_hub_uploads_the_final_folder_once(tiny_xlmr, messages_file, tmp_path, monkeypatch):
    """Up to the upload call: huggingface_hub's create_repo and upload_folder are replaced, so no network."""
    import huggingface_hub

    import m3cls.model.loading

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, ignore_patterns=None, **kwargs):
        calls.append(("upload_folder", repo_id, folder_path, sorted(os.listdir(folder_path)), ignore_patterns))
        return "https://huggingface.co/me/tiny/commit/1"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(m3cls.hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    out = str(tmp_path / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *QUICK, "--save_steps", "2", "--push_to_hub", "--hub_model_id", "me/tiny",
                 "--hub_token", "hf_secret"]) == 0
    assert [c[:2] for c in calls] == [("create_repo", "me/tiny"), ("upload_folder", "me/tiny")]
    assert "m3cls-publish-" in calls[1][2]   # a copy made for publishing (issue 25: no local paths)
    files, ignore = calls[1][3], calls[1][4]
    assert {"README.md", "m3cls.json", "model.safetensors", "config.json", "tokenizer.json",
            "train_config.yaml"} <= set(files)
    assert "checkpoint-*" in ignore and "training_args.bin" in ignore  # a pickle holding --hub_token
    assert "hf_secret" not in open(os.path.join(out, "train_config.yaml")).read()


def test_push_to_hub_without_a_token_fails_before_training(tiny_xlmr, messages_file, tmp_path, capsys,
                                                           monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    out = tmp_path / "model"
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", str(out),
                 "--push_to_hub"]) == 2
    assert "--push_to_hub needs a Hugging Face token" in capsys.readouterr().err and not out.exists()


def test_report_to_tensorboard_writes_events(tiny_xlmr, messages_file, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = str(tmp_path / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--output_dir", out,
                 *QUICK, "--eval_steps", "2", "--logging_steps", "2", "--report_to", "tensorboard"]) == 0
    [run] = glob.glob(os.path.join(out, "runs", "*"))
    events = EventAccumulator(run)
    events.Reload()
    assert {"train/loss", "eval/macro_f1", "eval/accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("eval/macro_f1")] == [2, 4]


def test_calibrate_refreshes_an_m3cls_card_and_leaves_another_readme_alone(tmp_path):
    from m3cls.model.card import refresh_model_card, write_model_card
    from m3cls.model.contract import ModelContract

    contract = ModelContract(labels=("a", "b"), max_length=128)
    write_model_card(str(tmp_path), contract)
    assert refresh_model_card(str(tmp_path), contract.replace(temperature=0.625))
    assert "logits / 0.625" in (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text("# my own notes\n")
    assert refresh_model_card(str(tmp_path), contract) is None
    assert (tmp_path / "README.md").read_text() == "# my own notes\n"

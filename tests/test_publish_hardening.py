"""Issue 25: the card escapes what it quotes, --push_to_hub publishes no local paths or validation snippets,
and the embedding cache never stops a run nor reads more than it needs."""

import errno
import fnmatch
import json
import logging
import os

import numpy as np


def _contract(labels, **info):
    from m3cls.model.contract import ModelContract

    return ModelContract(labels=labels, max_length=32, info=info)


def test_the_card_escapes_label_names_in_tables_and_quotes_the_folder_in_snippets():
    from m3cls.model.card import model_card

    labels = ["a|b", "<script>alert(1)</script>"]
    card = model_card(_contract(labels, data={"train_counts": {n: 3 for n in labels}}), "my model; rm -rf ~")
    rows = [line for line in card.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert rows[0].startswith("| 0 | a\\|b |") and rows[0].count("|") - rows[0].count("\\|") == 5
    assert "<script>" not in card and "&lt;script&gt;" in rows[1]
    assert "--model_path 'my model; rm -rf ~' --text" in card
    assert 'Classifier.from_pretrained("my model; rm -rf ~")' in card


def test_push_to_hub_publishes_base_names_and_no_validation_snippets(tmp_path, monkeypatch):
    import huggingface_hub

    from m3cls.training import hub

    folder = tmp_path / "run" / "model"
    folder.mkdir(parents=True)
    data = str(tmp_path / "private" / "clients.json")
    contract = {"labels": ["A", "B"], "max_length": 32, "data": {"train_path": data},
                "settings": {"output_dir": str(folder), "data_path": data},
                "inspection": {"duplicates": {"count": 1, "examples": ["secret validation text"]}}}
    (folder / "m3cls.json").write_text(json.dumps(contract))
    (folder / "README.md").write_text(f"- training: {data}, 3 texts\n")
    (folder / "train_config.yaml").write_text(f"data_path: {data}\noutput_dir: {folder}\n")
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "training_args.bin").write_bytes(b"pickle")
    seen = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=True):
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message="", ignore_patterns=()):
            for root, _, files in os.walk(folder_path):
                for name in files:
                    if not any(fnmatch.fnmatch(name, p) for p in ignore_patterns):
                        seen[name] = open(os.path.join(root, name), "rb").read()
            return "https://hub/commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    hub.push_folder(str(folder), hub.HubTarget("me/model", "t", None, None))
    assert set(seen) == {"m3cls.json", "README.md", "train_config.yaml", "model.safetensors"}
    text = b"".join(seen.values()).decode()
    assert str(tmp_path) not in text and "secret validation text" not in text
    assert "clients.json" in seen["README.md"].decode()
    published = json.loads(seen["m3cls.json"])
    assert published["data"]["train_path"] == "clients.json" and published["inspection"]["duplicates"]["count"] == 1
    assert json.loads((folder / "m3cls.json").read_text()) == contract   # the local folder keeps everything


def test_a_cache_write_that_fails_is_a_warning_and_the_vectors_still_come_back(tmp_path, monkeypatch, caplog):
    from m3cls.probe import cache

    store = cache.EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 8})

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "write_shard", disk_full)
    with caplog.at_level(logging.WARNING):
        store.put(["a", "b"], np.ones((2, 3), dtype=np.float32))
    assert "cannot write" in caplog.text and "No space left on device" in caplog.text
    found, missing = store.get(["a", "b", "c"])
    assert sorted(found) == [0, 1] and missing == [2]


def test_opening_the_cache_reads_keys_only_and_get_reads_only_the_shards_it_needs(tmp_path, monkeypatch):
    from m3cls.probe import cache

    settings = {"model": "m", "max_length": 8}
    first = cache.EmbeddingCache(str(tmp_path), settings)
    for i in range(5):
        first.put([f"text {i}"], np.full((1, 3), i, dtype=np.float32))
    reads = []
    real = cache.read_shard
    monkeypatch.setattr(cache, "read_shard", lambda path, key: reads.append(path) or real(path, key))
    second = cache.EmbeddingCache(str(tmp_path), settings)
    assert reads == [] and len(second) == 5
    found, missing = second.get(["text 3", "new"])
    assert len(reads) == 1 and missing == [1]
    np.testing.assert_array_equal(found[0], np.full(3, 3, dtype=np.float32))

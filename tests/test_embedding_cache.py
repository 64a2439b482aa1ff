"""The embedding cache: hits, misses after any settings change, damaged shards, interrupted runs."""

import logging
import os

import numpy as np
import pytest
from conftest import make_texts

from m3cls.probe.cache import EmbeddingCache
from m3cls.probe.embeddings import Embedder

TEXTS = [t for t, _ in make_texts(30, seed=41)]


def embedder(model, cache, **overrides):
    settings = dict(max_length=32, pooling="mean", precision="fp32", batch_size=8, cache_dir=str(cache))
    return Embedder(model, **{**settings, **overrides})


def test_second_run_reads_the_cache_and_gets_the_same_vectors(tiny_xlmr, tmp_path):
    first = embedder(tiny_xlmr, tmp_path)
    a = first.embed(TEXTS)
    assert first.stats["computed"] == 30 and first.stats["cached"] == 0
    second = embedder(tiny_xlmr, tmp_path)
    b = second.embed(TEXTS + TEXTS[:3])  # repeated texts are read once
    assert second.stats["cached"] == 30 and second.stats["computed"] == 0 and second._backend is None
    np.testing.assert_array_equal(a, b[:30])
    np.testing.assert_array_equal(b[30:], a[:3])
    fresh = embedder(tiny_xlmr, tmp_path, cache_dir=None).embed(TEXTS)
    np.testing.assert_allclose(a, fresh, atol=1e-6)


@pytest.mark.parametrize("change", [{"max_length": 16}, {"truncation": "tail"}, {"pooling": "max"},
                                    {"precision": "bf16"}, {"long_text": "chunks", "stride": 2}])
def test_any_settings_change_is_a_miss(tiny_xlmr, tmp_path, change):
    base = embedder(tiny_xlmr, tmp_path).embed(TEXTS)
    other = embedder(tiny_xlmr, tmp_path, **change)
    vectors = other.embed(TEXTS)
    assert other.stats["computed"] == 30 and other.stats["cached"] == 0
    assert not np.allclose(base, vectors, atol=1e-6)  # the setting matters, so reusing would have been wrong


def test_changed_weights_are_a_miss(tiny_xlmr, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_xlmr, model)
    embedder(str(model), tmp_path).embed(TEXTS)
    os.utime(model / "model.safetensors", ns=(1, 1))  # retrained in place: weights are known by size and time
    again = embedder(str(model), tmp_path)
    again.embed(TEXTS)
    assert again.stats["computed"] == 30


def test_settings_sharing_a_folder_never_share_vectors(tmp_path, monkeypatch):
    # the folder is named by a hash of the settings; settings.json in it is compared too, so even two settings
    # whose hashes collided would not read each other's vectors
    from m3cls.probe import cache as embedcache

    monkeypatch.setattr(embedcache, "settings_key", lambda settings: "same")
    one = EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 8})
    one.put(["a"], np.ones((1, 3), dtype=np.float32))
    assert EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 8}).get(["a"])[1] == []
    assert EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 16}).get(["a"])[1] == [0]


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_shard_is_reported_once_and_rebuilt(tiny_xlmr, tmp_path, caplog, damage):
    good = embedder(tiny_xlmr, tmp_path).embed(TEXTS)
    folder = embedder(tiny_xlmr, tmp_path).cache.folder
    shards = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".emb")]
    assert len(shards) == 1
    blob = bytearray(open(shards[0], "rb").read())
    if damage == "flip":
        blob[-5] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) - 100]
    else:
        blob = bytearray(b"not a shard at all")
    open(shards[0], "wb").write(bytes(blob))
    with caplog.at_level(logging.WARNING, logger="m3cls.probe.cache"):
        again = embedder(tiny_xlmr, tmp_path)
        vectors = again.embed(TEXTS)   # a shard is checked whole when its vectors are first needed
    lines = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(lines) == 1 and shards[0] in lines[0]
    assert again.stats["computed"] == 30
    np.testing.assert_allclose(vectors, good, atol=1e-6)
    assert embedder(tiny_xlmr, tmp_path).embed(TEXTS) is not None
    assert len([n for n in os.listdir(folder) if n.endswith(".emb")]) == 1


def test_an_interrupted_run_keeps_finished_blocks(tiny_xlmr, tmp_path, monkeypatch):
    from m3cls.probe import embeddings as embeddings

    monkeypatch.setattr(embeddings, "BLOCK_TEXTS", 10)
    first = embedder(tiny_xlmr, tmp_path)
    calls = {"n": 0}
    original = first._run

    def run_then_die(backend, ids):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(backend, ids)

    monkeypatch.setattr(first, "_run", run_then_die)
    with pytest.raises(KeyboardInterrupt):
        first.embed(TEXTS)
    second = embedder(tiny_xlmr, tmp_path)
    second.embed(TEXTS)
    assert (second.stats["cached"], second.stats["computed"]) == (20, 10)


def test_a_shard_from_other_settings_is_never_read(tmp_path):
    one = EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 8})
    one.put(["a", "b"], np.ones((2, 3), dtype=np.float32))
    two = EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 16})
    assert two.get(["a", "b"])[1] == [0, 1]
    shard = next(n for n in os.listdir(one.folder) if n.endswith(".emb"))
    os.replace(os.path.join(one.folder, shard), os.path.join(two.folder, shard))  # a shard moved by hand
    assert EmbeddingCache(str(tmp_path), {"model": "m", "max_length": 16}).get(["a"])[1] == [0]


def test_kept_results_are_read_only_for_the_same_inputs(tmp_path, caplog):
    import json

    from m3cls.probe.cache import cached_result, data_digest

    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    inputs = {"model": "m", "max_length": 8, "data": data_digest(["a", "b"], ["x", "y"])}
    assert cached_result(str(tmp_path), "inspection", inputs, compute) == ({"n": 1}, False)
    assert cached_result(str(tmp_path), "inspection", dict(inputs), compute) == ({"n": 1}, True)
    for other in ({**inputs, "max_length": 9}, {**inputs, "data": data_digest(["a", "b"], ["x", "x"])},
                  {**inputs, "data": data_digest(["a", "b"], ["x"], ["y"])}):
        assert cached_result(str(tmp_path), "inspection", other, compute)[1] is False
    assert cached_result(None, "inspection", lambda: 1 / 0, compute) == ({"n": 5}, False)  # no folder: no key
    assert len({data_digest(["ab"], []), data_digest(["a"], ["b"]), data_digest(["a", "b"]), data_digest(["a"], None),
                data_digest(["a"], []), data_digest([12, 3]), data_digest([1, 23])}) == 7
    (path,) = [p for p in (tmp_path / "inspection").iterdir()
               if json.loads(p.read_text())["inputs"] == inputs]
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "inputs": {**inputs, "max_length": 9}}))  # a file under the wrong name
    with caplog.at_level(logging.WARNING):
        assert cached_result(str(tmp_path), "inspection", inputs, compute) == ({"n": 6}, False)
    assert "does not match its inputs" in caplog.text
    path.write_text(path.read_text()[:20])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cached_result(str(tmp_path), "inspection", inputs, compute) == ({"n": 7}, False)
    assert "is damaged" in caplog.text and len(caplog.records) == 1
    assert cached_result(str(tmp_path), "inspection", inputs, compute) == ({"n": 7}, True)  # rebuilt
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a result JSON cannot hold: returned, not kept, no partial file left
        assert cached_result(str(tmp_path), "other", inputs, lambda: {"x": {1, 2}}) == ({"x": {1, 2}}, False)
    assert "cannot write" in caplog.text and not list((tmp_path / "other").iterdir())


def test_training_reads_a_kept_inspection_of_the_same_data(tiny_xlmr, tmp_path, caplog):
    import json

    from conftest import messages_record, write_json

    from m3cls.cli import main

    pairs = make_texts(40, seed=5)
    data = write_json(tmp_path / "d.json", [messages_record(t, y) for t, y in pairs])
    flags = ["train", "--model_name_or_path", tiny_xlmr, "--data_path", data, "--cache_dir", str(tmp_path / "cache"),
             "--method", "probe", "--max_length", "32", "--precision", "fp32", "--no_report", "--no_baseline"]

    def run(name, *extra):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert main([*flags, "--output_dir", str(tmp_path / name), *extra]) == 0
        return json.load(open(tmp_path / name / "m3cls.json"))["inspection"], "data inspection: read" in caplog.text

    first, kept = run("a")
    assert not kept and first["tokens"]["max_length"] == 32
    again, kept = run("b", "--probe_c", "0.5")
    assert kept and again == first
    shorter, kept = run("c", "--max_length", "16")
    assert not kept and shorter["tokens"]["max_length"] == 16
    held_out = write_json(tmp_path / "v.json", [messages_record(t, y) for t, y in make_texts(10, seed=6)])
    assert not run("d", "--validation_path", held_out)[1]
    same, kept = run("e", "--validation_path", held_out)
    assert kept
    pairs[0] = (pairs[0][0], "Human" if pairs[0][1] == "GPT" else "GPT")  # one label changed, the texts are not
    write_json(tmp_path / "d.json", [messages_record(t, y) for t, y in pairs])
    changed, kept = run("f", "--validation_path", held_out)
    assert not kept and changed["train"]["class_counts"] != same["train"]["class_counts"]

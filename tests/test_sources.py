"""Columnar data through the CLI: Parquet in and out, save_to_disk folders, files datasets reads, and a
dataset loaded by name from a local datasets cache with no network."""

import glob
import gzip
import json
import os

import pytest
from conftest import TRAIN_FLAGS, make_texts

from m3cls.cli import main
from m3cls.data.readers import ReadOptions, iter_items, read_labeled

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
datasets = pytest.importorskip("datasets")

QUICK = [*TRAIN_FLAGS, "--max_steps", "4", "--no_baseline", "--report", "false"]


def _parquet(path, pairs, row_group_size=16, **extra):
    columns = {"body": [t for t, _ in pairs], "topic": [y for _, y in pairs], **extra}
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return str(path)


def _meta(folder):
    return json.load(open(os.path.join(folder, "m3cls.json")))


def test_parquet_trains_and_predicts_parquet_with_the_jsonl_fields(tiny_xlmr, trained_xlmr, tmp_path):
    train = _parquet(tmp_path / "train.parquet", make_texts(60, seed=4), n_words=list(range(60)))
    out = str(tmp_path / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", train, "--output_dir", out,
                 "--text_column", "body", "--label_column", "topic", *QUICK]) == 0
    data = _meta(out)["data"]
    assert data["train_path"] == train and sum(data["train_counts"].values()) == 54  # 60 rows, 10% held out

    texts = _parquet(tmp_path / "texts.parquet", make_texts(45, seed=6), row_group_size=7)  # 7 row groups
    jsonl, parquet = str(tmp_path / "p.jsonl"), str(tmp_path / "p.parquet")
    for output in (jsonl, parquet):
        assert main(["predict", "--model_path", trained_xlmr, "--input", texts, "--text_column", "body",
                     "--output", output]) == 0
    lines = [json.loads(line) for line in open(jsonl)]
    rows = pq.read_table(parquet).to_pylist()
    assert len(rows) == 45 and [r["index"] for r in rows] == list(range(45))
    for line, row in zip(lines, rows):
        assert set(row) == set(line) and row["label"] == line["label"] and row["label_id"] == line["label_id"]
        assert row["probabilities"] == pytest.approx(line["probabilities"], abs=1e-6)
    assert not glob.glob(str(tmp_path / "*.partial"))


def test_parquet_is_read_in_row_groups_in_order(tmp_path, monkeypatch):
    import m3cls.data.sources as sources

    path = _parquet(tmp_path / "t.parquet", make_texts(50, seed=1), row_group_size=10)
    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            seen.append((batch.num_rows, tuple(batch.schema.names)))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(sources, "_BATCH_ROWS", 10)
    items = iter_items(path, ReadOptions(text_column="body", label_column="topic"))
    first = next(items)
    assert first.text == make_texts(50, seed=1)[0][0] and first.where.endswith("row 1")
    assert seen == [(10, ("body", "topic"))]  # one batch read so far, of the needed columns only
    assert [i.text for i in [first, *items]] == [t for t, _ in make_texts(50, seed=1)]
    assert len(seen) == 5


def test_parquet_without_the_column_lists_its_columns_and_writes_nothing(tmp_path, capsys):
    path = _parquet(tmp_path / "t.parquet", make_texts(20))
    out = tmp_path / "out"
    assert main(["train", "--model_name_or_path", "bundled", "--data_path", path, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"m3cls train: error: {path}: no column 'text' (columns: body, topic); name it with "
                   f"--text_column"]
    assert not out.exists()


def _class_label_dataset(pairs):
    names = sorted({y for _, y in pairs})
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"sentence": [t for t, _ in pairs],
                                       "label": [names.index(y) for _, y in pairs]}, features=features)


def test_save_to_disk_folders_train_and_predict(tiny_xlmr, trained_xlmr, tmp_path):
    folder = str(tmp_path / "dd")
    datasets.DatasetDict(train=_class_label_dataset(make_texts(40, seed=2)),
                         test=_class_label_dataset(make_texts(12, seed=3))).save_to_disk(folder)
    out = str(tmp_path / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--data_path", folder, "--text_column", "sentence",
                 "--validation_split_name", "test", "--output_dir", out, *QUICK]) == 0
    meta = _meta(out)
    assert meta["labels"] == ["GPT", "Human"]  # ClassLabel ids became their names
    assert meta["data"]["train_path"] == f"{folder} [train]" and meta["data"]["validation_path"] == f"{folder} [test]"
    assert sum(meta["data"]["validation_counts"].values()) == 12

    preds = str(tmp_path / "p.jsonl")
    assert main(["predict", "--model_path", trained_xlmr, "--input", os.path.join(folder, "test"),
                 "--text_column", "sentence", "--output", preds]) == 0
    assert len(open(preds).readlines()) == 12
    data = read_labeled(os.path.join(folder, "test"), ReadOptions(text_column="sentence"))
    assert data.labels == [y for _, y in make_texts(12, seed=3)]


def test_files_datasets_reads_compressed_jsonl_and_arrow(tmp_path):
    from conftest import messages_record

    path = tmp_path / "chat.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for text, label in make_texts(9, seed=4):
            f.write(json.dumps(messages_record(text, label)) + "\n")
    data = read_labeled(str(path))  # the reference messages records, read by datasets' json builder
    assert data.texts == [t for t, _ in make_texts(9, seed=4)] and data.labels[:2] == ["GPT", "Human"]

    _class_label_dataset(make_texts(6)).save_to_disk(str(tmp_path / "one"))
    [arrow] = glob.glob(str(tmp_path / "one" / "*.arrow"))
    assert read_labeled(arrow, ReadOptions(text_column="sentence")).labels == [y for _, y in make_texts(6)]


def _cache_by_name(cache, name="m3cls-test/tiny_topics"):
    """Lay a dataset out in a datasets cache exactly as load_dataset(name) leaves a Hub download, offline."""
    from datasets.packaged_modules.json.json import Json

    files = {}
    for split, seed, n in (("train", 1, 60), ("validation", 2, 24)):
        files[split] = str(cache / f"{split}.jsonl")
        with open(files[split], "w", encoding="utf-8") as f:
            for text, label in make_texts(n, seed=seed):
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    short = name.split("/")[-1]
    Json(cache_dir=str(cache), dataset_name=short, config_name="default", data_files=files,
         hash="0123abcd").download_and_prepare()
    os.rename(cache / short, cache / name.replace("/", "___"))
    [config_dir] = glob.glob(str(cache / name.replace("/", "___") / "default-*"))
    os.rename(config_dir, cache / name.replace("/", "___") / "default")
    return name


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-datasets"
    cache.mkdir()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_dataset_by_name_loads_offline_from_the_cache(tiny_xlmr, datasets_cache, tmp_path):
    name = _cache_by_name(datasets_cache)
    out = str(tmp_path / "model")
    assert main(["train", "--model_name_or_path", tiny_xlmr, "--dataset_name", name, "--output_dir", out,
                 *QUICK]) == 0
    data = _meta(out)["data"]
    assert data["train_path"] == f"{name} [train]" and data["validation_path"] == f"{name} [validation]"
    assert sum(data["train_counts"].values()) == 60 and sum(data["validation_counts"].values()) == 24


def test_dataset_not_cached_and_no_hub_fails_fast_in_one_line(datasets_cache, tmp_path, capsys, monkeypatch):
    import m3cls.model.loading

    _cache_by_name(datasets_cache)
    capsys.readouterr()
    out = tmp_path / "out"
    base = ["train", "--model_name_or_path", "bundled", "--output_dir", str(out), "--dataset_name"]
    assert main([*base, "m3cls-test/absent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "m3cls-test/absent: it is not in the local datasets cache" in err[0], err
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(m3cls.hub, "hub_reachable", lambda timeout=3.0: False)
    assert main([*base, "m3cls-test/absent"]) == 2
    assert "the Hugging Face Hub cannot be reached" in capsys.readouterr().err
    assert main([*base, "m3cls-test/tiny_topics", "--dataset_config", "other"]) == 2
    assert "config 'other' is not cached (cached configs: 'default')" in capsys.readouterr().err
    assert main([*base, "m3cls-test/tiny_topics", "--train_split", "tarin"]) == 2
    assert "no split 'tarin' (splits: train, validation)" in capsys.readouterr().err
    assert not out.exists()


def test_parquet_output_keeps_prediction_columns_when_the_first_record_is_bad(trained_xlmr, tmp_path):
    # a marked bad record has only index and error; the columns must still hold every field of the rows
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": ""}\n{"text": "delve tapestry"}\n{"text": "lol yeah"}\n', encoding="utf-8")
    out = str(tmp_path / "p.parquet")
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(texts), "--output", out,
                 "--on_error", "skip"]) == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["error"] and rows[0]["label"] is None
    assert rows[1]["label"] in ("GPT", "Human") and rows[2]["probabilities"] and rows[1]["error"] is None


def test_group_column_is_read_from_parquet_and_dataset_splits(tmp_path):
    """--group_column (and so --by and --holdout_group) comes from the same rows as the texts; a ClassLabel
    group column gives its names."""
    pairs = make_texts(12, seed=8)
    groups = [f"g{i % 4}" for i in range(12)]
    path = _parquet(tmp_path / "g.parquet", pairs, row_group_size=5, doc=groups)
    data = read_labeled(path, ReadOptions(text_column="body", label_column="topic", group_column="doc"))
    assert data.groups == groups and data.texts == [t for t, _ in pairs]
    names = sorted(set(groups))
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("string"),
                                  "doc": datasets.ClassLabel(names=names)})
    train = datasets.Dataset.from_dict({"text": [t for t, _ in pairs], "label": [y for _, y in pairs],
                                        "doc": [names.index(g) for g in groups]}, features=features)
    folder = str(tmp_path / "dd")
    datasets.DatasetDict(train=train, validation=train.select(range(4))).save_to_disk(folder)
    from m3cls.data.sources import read_splits

    split, validation = read_splits(folder, ReadOptions(group_column="doc"))
    assert split.groups == groups and validation.groups == groups[:4]

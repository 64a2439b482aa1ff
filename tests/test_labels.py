import pytest

from m3cls.errors import ConfigError, DataError
from m3cls.tasks.labels import LabelSet


def test_discovered_labels_are_sorted_numbers_numerically():
    assert LabelSet.discover(["b", "a", "b"], "f").names == ("a", "b")
    assert LabelSet.discover(["10", "2", "1"], "f").names == ("1", "2", "10")


def test_single_class_is_refused():
    with pytest.raises(DataError, match=r"train\.json: every one of the 3 records has the label 'Human'; a "
                                        r"classifier needs at least 2 classes"):
        LabelSet.discover(["Human"] * 3, "train.json")


def test_fixed_labels_keep_their_order_and_check_spelling():
    assert LabelSet.discover(["Human", "GPT"], "f", ["Human", "GPT"]).names == ("Human", "GPT")
    with pytest.raises(ConfigError, match=r"--labels entry 'Humna' matches no label in f \(labels found: GPT, "
                                          r"Human\); fix the spelling or remove it"):
        LabelSet.discover(["Human", "GPT"], "f", ["Humna", "GPT"])
    with pytest.raises(DataError, match=r"f: record 2 has label 'Claude', which is not in --labels"):
        LabelSet.discover(["Human", "Claude", "GPT"], "f", ["Human", "GPT"])
    with pytest.raises(ConfigError, match="more than once"):
        LabelSet.discover(["a", "b"], "f", ["a", "a", "b"])


def test_unknown_validation_label_names_the_record():
    labels = LabelSet(("GPT", "Human"))
    assert labels.encode(["Human", "GPT"], "val.json") == [1, 0]
    with pytest.raises(DataError, match=r"val\.json: record 2 has label 'Bard', which never appears in "
                                        r"train\.json"):
        labels.encode(["Human", "Bard"], "val.json", "train.json")


def test_config_round_trip():
    labels = LabelSet(("a", "b", "c"))
    assert LabelSet.from_config({str(k): v for k, v in labels.id2label.items()}) == labels


@pytest.mark.parametrize("odd", ["--5", "①", "١٢", "-", "+5", "1e5", "٣", "²", "5-", "½"])
def test_any_label_string_sorts_without_error(odd):
    # str.isdigit is true for "①", "²" and "١٢" and for "--5" once the dashes are stripped, but int() fails
    # on some of them: the sort key must accept every label string
    names = LabelSet.discover([odd, "10", "2", odd, "b"], "f").names
    assert names == ("2", "10", *sorted([odd, "b"]))


def test_label_order_does_not_depend_on_the_order_seen():
    # discover() sorts a set, whose order varies between processes (string hashing is seeded per process), so
    # two labels with equal sort keys ("012" and "12") would swap class ids between runs: every key is unique
    from itertools import permutations

    from m3cls.tasks.labels import _sort_key

    labels = ["١٢", "12", "012", "①", "-3", "x"]
    assert len({_sort_key(n) for n in labels}) == len(labels)
    orders = {tuple(sorted(p, key=_sort_key)) for p in permutations(labels)}
    assert orders == {("-3", "012", "12", "x", "١٢", "①")}
    assert LabelSet.discover(labels, "f").names == ("-3", "012", "12", "x", "١٢", "①")


def test_odd_labels_train_and_predict_through_the_cli(tiny_bert, tmp_path, capsys):
    import json

    from conftest import make_texts, write_json

    from m3cls.cli import main

    rename = {"GPT": "--5", "Human": "①"}
    data = write_json(tmp_path / "d.json", [{"text": t, "label": rename[y]} for t, y in make_texts(40, seed=6)])
    out = tmp_path / "model"
    assert main(["train", "--model_name_or_path", tiny_bert, "--data_path", data, "--output_dir", str(out),
                 "--max_length", "32", "--max_steps", "2", "--per_device_train_batch_size", "8", "--precision",
                 "fp32", "--no_baseline"]) == 0
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "--5", "1": "①"}
    capsys.readouterr()
    assert main(["predict", "--model_path", str(out), "--text", "delve lol", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["probabilities"]) == {"--5", "①"}

"""The Python API: train from Python, then Classifier.predict / predict_stream."""

import pytest
from conftest import make_texts, write_json


@pytest.fixture(scope="module")
def api_model(tiny_bert, tmp_path_factory):
    from transformers import TrainingArguments

    from m3cls import TrainConfig, train

    folder = tmp_path_factory.mktemp("api")
    data = write_json(folder / "d.jsonl.json", [{"text": t, "label": y} for t, y in make_texts(60, seed=4)])
    args = TrainingArguments(output_dir=str(folder / "model"), num_train_epochs=3, learning_rate=3e-3,
                             per_device_train_batch_size=8, seed=1, report_to="none")
    result = train(TrainConfig(model_name_or_path=tiny_bert, data_path=data, max_length=48, precision="fp32"),
                   args)
    assert result.metrics["accuracy"] >= 0.8 and list(result.contract.labels) == ["GPT", "Human"]
    return result.output_dir


def test_predict_returns_labels_and_probabilities(api_model):
    from m3cls import Classifier

    clf = Classifier.from_pretrained(api_model)
    assert clf.max_length == 48 and clf.labels.names == ("GPT", "Human")
    results = clf.predict(["delve tapestry moreover", "lol dunno kinda"], temperature=1.0)
    assert [r.label for r in results] == ["GPT", "Human"]
    for r in results:
        assert abs(sum(r.probabilities.values()) - 1) < 1e-6 and r.label_id == clf.labels.names.index(r.label)
    assert clf.predict([]) == []


def test_predict_stream_matches_predict_in_order(api_model):
    from m3cls import Classifier

    clf = Classifier.from_pretrained(api_model, batch_size=3, precision="fp32")
    texts = [t for t, _ in make_texts(25, seed=6)]
    streamed = list(clf.predict_stream((t for t in texts), block_size=7))
    direct = clf.predict(texts)
    assert [s.label for s in streamed] == [d.label for d in direct]  # batches differ: rounding may too
    for s, d in zip(streamed, direct):
        assert s.probabilities == pytest.approx(d.probabilities, abs=1e-5)


def test_temperature_must_be_positive(api_model):
    from m3cls import Classifier
    from m3cls.errors import ConfigError

    clf = Classifier.from_pretrained(api_model)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="temperature must be a number above 0"):
            clf.predict(["x"], temperature=bad)


def test_train_takes_a_few_training_arguments_as_a_dict(tiny_bert, tmp_path):
    """The rest take transformers' defaults, as on the command line (a dict of some values once failed with
    "None is not a valid IntervalStrategy"); a key that is no field is one line with the nearest name."""
    from m3cls import TrainConfig, train
    from m3cls.errors import ConfigError

    data = write_json(tmp_path / "d.json", [{"text": t, "label": y} for t, y in make_texts(40, seed=4)])
    config = TrainConfig(model_name_or_path=tiny_bert, data_path=data, max_length=32, precision="fp32",
                         baseline=False, ladder=False, report=False)
    result = train(config, {"output_dir": str(tmp_path / "m"), "num_train_epochs": 1, "seed": 3})
    assert result.output_dir == str(tmp_path / "m") and (tmp_path / "m" / "m3cls.json").is_file()
    with pytest.raises(ConfigError, match=r"not TrainingArguments fields .*: num_train_epoch \(did you mean "
                                          r"num_train_epochs\?\)"):
        train(config, {"output_dir": str(tmp_path / "n"), "num_train_epoch": 1})
    assert not (tmp_path / "n").exists()

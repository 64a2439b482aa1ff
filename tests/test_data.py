import io
import json
import sys

import pytest
from conftest import messages_record, write_json

from m3cls.data.readers import ReadOptions, iter_items, read_labeled, stratified_split
from m3cls.errors import ConfigError, DataError

PAIRS = [("first text", "Human"), ("second text", "GPT"), ("third, with comma", "Human")]


def _write(path, content: str) -> str:
    path.write_text(content, encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path):
    out = {
        "messages.json": write_json(tmp_path / "messages.json", [messages_record(t, y) for t, y in PAIRS]),
        "messages.jsonl": _write(tmp_path / "messages.jsonl",
                                 "\n".join(json.dumps(messages_record(t, y)) for t, y in PAIRS) + "\n"),
        "flat.json": write_json(tmp_path / "flat.json", [{"text": t, "label": y} for t, y in PAIRS]),
        "flat.jsonl": _write(tmp_path / "flat.jsonl",
                             "\n".join(json.dumps({"text": t, "label": y}) for t, y in PAIRS)),
        "flat.csv": _write(tmp_path / "flat.csv", "text,label\n" + "".join(f'"{t}",{y}\n' for t, y in PAIRS)),
        "flat.tsv": _write(tmp_path / "flat.tsv", "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in PAIRS)),
    }
    return out


@pytest.mark.parametrize("name", ["messages.json", "messages.jsonl", "flat.json", "flat.jsonl", "flat.csv",
                                  "flat.tsv"])
def test_every_format_reads_the_same_records(files, name):
    data = read_labeled(files[name])
    assert list(zip(data.texts, data.labels)) == PAIRS


def test_jsonl_content_in_a_json_file_is_detected(tmp_path, files):
    path = tmp_path / "records.json"
    path.write_text(open(files["messages.jsonl"]).read())
    assert read_labeled(str(path)).labels == ["Human", "GPT", "Human"]


def test_format_override_and_custom_columns(tmp_path):
    path = _write(tmp_path / "data.dat", "body,cls\nhello there,a\nbye now,b\n")  # unknown extension
    data = read_labeled(path, ReadOptions(data_format="csv", text_column="body", label_column="cls"))
    assert data.texts == ["hello there", "bye now"] and data.labels == ["a", "b"]


def test_message_indices_pick_other_messages(tmp_path):
    record = {"messages": [{"content": "sys"}, {"content": "text here"}, {"content": "L1"}, {"content": "x"}]}
    path = write_json(tmp_path / "m.json", [record])
    data = read_labeled(path, ReadOptions(text_message_index=1, label_message_index=-2))
    assert data.texts == ["text here"] and data.labels == ["L1"]


def test_integer_labels_in_flat_json_become_names(tmp_path):
    path = write_json(tmp_path / "f.json", [{"text": "a b", "label": 0}, {"text": "c d", "label": 1}])
    assert read_labeled(path).labels == ["0", "1"]


def test_prediction_input_without_labels_and_plain_text(tmp_path):
    path = _write(tmp_path / "texts.txt", "one line\nanother line\n")
    items = list(iter_items(path))
    assert [i.text for i in items] == ["one line", "another line"] and {i.label for i in items} == {None}
    jsonl = _write(tmp_path / "t.jsonl", '{"text": "x y"}\n{"text": "z"}\n')
    assert [i.text for i in iter_items(jsonl)] == ["x y", "z"]


def test_two_message_records_can_be_predicted_but_not_trained(tmp_path):
    path = write_json(tmp_path / "two.json", [{"messages": [{"content": "q"}, {"content": "the text"}]}])
    assert [i.text for i in iter_items(path)] == ["the text"]
    with pytest.raises(DataError, match=r"record 1 has 2 messages, so messages\[1\] \(text\) and messages\[-1\] "
                                        r"\(label\) are the same message"):
        read_labeled(path)


def test_iter_items_streams_lazily(tmp_path):
    path = _write(tmp_path / "big.jsonl", '{"text": "ok"}\n' * 3 + "not json\n")
    items = iter_items(path)
    assert next(items).text == "ok"  # the bad line is not read yet


BAD_CASES = [
    ("missing.json", None, r"missing\.json: file not found"),
    ("empty.json", "", r"empty\.json: file is empty"),
    ("blank.json", "\n  \n", r"blank\.json: file holds only blank lines"),
    ("truncated.json", '[{"messages": [{"content": "a"}', r"truncated\.json: not valid JSON at line 1 column "
                                                           r"\d+ .*truncated or damaged"),
    ("object.json", '{"messages": []}', r"object\.json: the top level is a JSON object, expected a list of "
                                        r"records like \[\{\"messages\": \[...\]\}, ...\]"),
    ("object.jsonl", '{"messages": []}', r"object\.jsonl: line 1 has 0 message\(s\), too few for "
                                         r"--text_message_index 1"),
    ("top.json", '[[1, 2]]', r"top\.json: record 1 is a JSON list, expected an object"),
    ("nomsg.json", json.dumps([messages_record("a", "b"), {"text": "x"}]),
     r"nomsg\.json: record 2 has no 'messages' field"),
    ("few.json", json.dumps([{"messages": [{"content": "only"}]}]),
     r"few\.json: record 1 has 1 message\(s\), too few for --text_message_index 1"),
    ("emptytext.json", json.dumps([messages_record("a b", "X"), messages_record("   ", "Y")]),
     r"emptytext\.json: record 2: messages\[1\]\.content is empty"),
    ("numtext.json", json.dumps([{"messages": [{"content": "q"}, {"content": 5}, {"content": "L"}]}]),
     r"numtext\.json: record 1: messages\[1\]\.content is a JSON number \('5'\), expected a non-empty string"),
    ("emptylabel.json", json.dumps([messages_record("a b", "")]),
     r"emptylabel\.json: record 1: label messages\[-1\]\.content is empty"),
    ("numlabel.json", json.dumps([{"messages": [{"content": "q"}, {"content": "t"}, {"content": 3}]}]),
     r"numlabel\.json: record 1: label messages\[-1\]\.content is a JSON number"),
    ("badline.jsonl", '{"text": "a", "label": "b"}\n{"text": \n', r"badline\.jsonl: line 2 is not valid JSON"),
    ("nolabel.csv", "text\nhello\n", r"nolabel\.csv: no column 'label' in the header \(columns: text\); "
                                     r"name the label column with --label_column"),
    ("emptycell.csv", "text,label\nhello,a\n,b\n", r"emptycell\.csv: line 3: column 'text' is empty"),
    ("texts.txt", "a\nb\n", r"texts\.txt: a plain text file has no labels"),
    ("blankline.jsonl", '{"text": "a", "label": "b"}\n\n{"text": "c", "label": "d"}\n',
     r"blankline\.jsonl: line 2 is blank; each line of a JSONL file must be one JSON object"),
    ("fields.csv", "text,label\nhello,a\nhello,a,extra\n", r"fields\.csv: line 3 has 3 field\(s\) but the header "
                                                           r"has 2; quote a field that holds the delimiter"),
    ("short.tsv", "text\tlabel\nhello\n", r"short\.tsv: line 2 has 1 field\(s\) but the header has 2"),
    ("blankrow.csv", "text,label\nhello,a\n\nbye,b\n", r"blankrow\.csv: line 3 is blank; expected a row of 2 fields"),
]


@pytest.mark.parametrize("name,content,pattern", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_names_file_and_record(tmp_path, name, content, pattern):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=pattern) as info:
        read_labeled(str(path))
    assert "\n" not in str(info.value)


def test_top_level_object_in_a_json_array_file(tmp_path):
    path = _write(tmp_path / "obj.json", '{\n  "records": [1]\n}')
    with pytest.raises(DataError, match=r"obj\.json: the top level is a JSON object"):
        read_labeled(path)
    path = _write(tmp_path / "obj2.json", '{"records": [1]}')
    with pytest.raises(DataError, match=r"obj2\.json: the top level is a JSON object, expected a list"):
        read_labeled(path, ReadOptions(data_format="messages"))


def test_stratified_split_is_seeded_and_keeps_every_class(tmp_path):
    path = write_json(tmp_path / "d.json", [{"text": f"t{i}", "label": "ab"[i % 3 == 0]} for i in range(30)])
    data = read_labeled(path)
    train_a, val_a = stratified_split(data, 0.2, seed=3)
    _, val_b = stratified_split(data, 0.2, seed=3)
    assert val_a.texts == val_b.texts and len(train_a) + len(val_a) == 30
    assert set(val_a.labels) == {"a", "b"} and len(val_a) == 6
    assert stratified_split(data, 0.2, seed=4)[1].texts != val_a.texts
    with pytest.raises(ConfigError, match="--validation_split 1.5 must be between 0 and 1"):
        stratified_split(data, 1.5, seed=0)


# Each format with good and bad records (blank lines, empty and non-string texts, missing fields, broken lines,
# wrong field counts): (file name, content, positions of the bad records, number of records).
POSITION_CASES = [
    ("texts.txt", "alpha beta\n\n   \nlol yeah\r\nlast\n", {1, 2}, 5),
    ("flat.jsonl", '{"text": "a b"}\n\n{"text": ""}\n{"text": 5}\n{"nope": 1}\n{"text": \n[1]\n{"text": "ok"}\n',
     {1, 2, 3, 4, 5, 6}, 8),
    ("messages.jsonl", "\n".join(json.dumps(r) for r in [messages_record("a b", "X"), {"messages": "no"},
                                                          messages_record("  ", "Y"), messages_record("ok", "Z")]),
     {1, 2}, 4),
    ("flat.json", json.dumps([{"text": "a"}, {"text": ""}, {"text": None}, [1], {"x": 1}, {"text": "ok"}]),
     {1, 2, 3, 4}, 6),
    ("messages.json", json.dumps([messages_record("a b", "X"), {"messages": [{"content": "q"}]},
                                  messages_record("", "Y"), messages_record("ok", "Z")], indent=2), {1, 2}, 4),
    ("flat.csv", 'text,label\nhello,x\n\nonly\n"a, b",2,3\n,4\n"two\nlines",5\nok,6\n', {1, 2, 3, 4}, 7),
    ("flat.tsv", "text\tlabel\nhello\tx\n\nonly\na\tb\tc\n\t4\nok\t6\n", {1, 2, 3, 4}, 6),
]


@pytest.mark.parametrize("name,content,bad,count", POSITION_CASES, ids=[c[0] for c in POSITION_CASES])
def test_position_is_the_record_place_and_bad_records_are_marked(tmp_path, name, content, bad, count):
    items = list(iter_items(_write(tmp_path / name, content), keep_bad=True))
    assert [i.position for i in items] == list(range(count))
    assert {i.position for i in items if i.error} == bad
    assert all(i.text is None and name in i.error and "\n" not in i.error for i in items if i.error)
    assert all(i.text and i.text.strip() for i in items if not i.error)
    with pytest.raises(DataError, match=name.replace(".", r"\.")):  # without keep_bad the first bad one raises
        list(iter_items(str(tmp_path / name)))


def test_stdin_blank_lines_keep_every_later_position(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Shares fell\n\nThe striker scored\n"))
    items = list(iter_items("-", keep_bad=True))
    assert [(i.position, i.text) for i in items] == [(0, "Shares fell"), (1, None), (2, "The striker scored")]
    assert items[1].error == "stdin: line 2 is blank; every line of a plain text input is one text -- remove the line"
    monkeypatch.setattr(sys, "stdin", io.StringIO("Shares fell\n\nThe striker scored\n"))
    with pytest.raises(DataError, match="stdin: line 2 is blank"):
        list(iter_items("-"))


def test_training_reads_stay_strict(tmp_path):
    path = write_json(tmp_path / "d.json", [{"text": "a", "label": "x"}, {"text": "", "label": "y"}])
    with pytest.raises(DataError, match=r"record 2: field 'text' is empty"):
        read_labeled(path)


def test_a_json_array_is_streamed_not_read_whole(monkeypatch):
    records = [{"text": f"record number {i} " + "word " * 20} for i in range(20000)]
    text = json.dumps(records)  # one line, as json.dump writes it: about 2.5 MB
    stream = io.StringIO(text)
    monkeypatch.setattr(sys, "stdin", stream)
    items = iter_items("-", ReadOptions(data_format="json"))
    first = [next(items) for _ in range(10)]
    assert [i.text for i in first] == [r["text"] for r in records[:10]]
    assert stream.tell() < len(text) / 20  # read so far: a chunk or two, not the file
    assert sum(1 for _ in items) == len(records) - 10


def test_json_array_errors_keep_record_numbers_and_lines(tmp_path):
    records = [{"text": f"t{i}", "label": "a"} for i in range(5000)]
    text = json.dumps(records, indent=2)
    at = text.index('"t4321"')
    path = _write(tmp_path / "big.json", text[:at] + "oops" + text[at + len('"t4321"'):])
    try:
        json.loads(open(path).read())
    except json.JSONDecodeError as e:
        line, column = e.lineno, e.colno
    items = iter_items(path, keep_bad=True)
    with pytest.raises(DataError, match=rf"big\.json: not valid JSON at line {line} column {column} "):
        for item in items:
            last = item
    assert last.position == 4320 and last.where.endswith("record 4321")
    bad = write_json(tmp_path / "bad.json", records[:2999] + [{"text": 7, "label": "a"}] + records[3000:])
    with pytest.raises(DataError, match=r"bad\.json: record 3000: field 'text' is a JSON number"):
        read_labeled(bad)

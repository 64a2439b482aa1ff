from m3cls.data import TextData
from m3cls.inspection import inspect_splits, warnings_for


def test_leakage_duplicates_and_imbalance_are_reported():
    train = TextData(["Same text", "same  TEXT", "other", "x"] + ["y"] * 8, ["a", "a", "b", "b"] + ["a"] * 8, "t")
    val = TextData(["other", "new"], ["b", "a"], "v")
    report = inspect_splits(train, val)
    assert report["train"]["duplicates"]["count"] == 8  # 1 case/space variant + 7 repeats of "y"
    assert report["overlap"]["count"] == 1 and report["overlap"]["share_of_validation"] == 0.5
    assert report["train"]["imbalance_ratio"] == 5.0
    warnings = warnings_for(report)
    assert any(w.startswith("LEAKAGE: 1 validation text(s) (50.0%)") for w in warnings)
    assert any("imbalanced (5.0:1" in w for w in warnings)


def test_chinese_text_with_the_english_bundled_model_warns():
    from m3cls.modeling import load_tokenizer

    tokenizer = load_tokenizer("bundled")
    chinese = ["这是一段由人类撰写的中文段落，用来测试分词器。", "模型改写后的文本往往更加流畅，但缺少个人风格。"] * 5
    report = inspect_splits(TextData(chinese, ["Human", "GPT"] * 5, "t"), TextData(chinese[:2], ["Human", "GPT"],
                                                                                    "v"), tokenizer, 128)
    assert report["tokens"]["unknown_token_share"] > 0.3
    warning = next(w for w in warnings_for(report, "bundled") if w.startswith("UNKNOWN TOKENS"))
    assert "does not cover the language" in warning and "BAAI/bge-m3" in warning
    english = ["A plain English sentence about markets."] * 4
    clean = inspect_splits(TextData(english, ["a", "b"] * 2, "t"), TextData(english[:2], ["a", "b"], "v"),
                           tokenizer, 128)
    assert not any(w.startswith("UNKNOWN") for w in warnings_for(clean))

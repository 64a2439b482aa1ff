from m3cls.data.inspection import inspect_splits, warnings_for
from m3cls.data.readers import TextData


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
    from m3cls.model.loading import load_tokenizer

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


def _exact_cosine(a: str, b: str) -> float:
    """scikit-learn's char_wb 3-4-gram counts, unhashed, on the same folded first 1,000 characters."""
    from collections import Counter

    from sklearn.feature_extraction.text import CountVectorizer

    analyze = CountVectorizer(analyzer="char_wb", ngram_range=(3, 4)).build_analyzer()
    x, y = (Counter(analyze(" ".join(t.split()).lower()[:1000])) for t in (a, b))
    dot = sum(x[k] * y[k] for k in x)
    return dot / ((sum(v * v for v in x.values()) * sum(v * v for v in y.values())) ** 0.5)


def test_char_gram_cosines_match_exact_counts():
    import random

    from m3cls.data.inspection import char_gram_vectors

    rng = random.Random(0)
    words = ["market", "shares", "goal", "match", "vote", "film", "这是", "文本", "改写", "人类", "to", "up"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))) for _ in range(40)]
    texts += ["ab", "", texts[0].upper().replace(" ", "  "), "x" * 1500]
    v = char_gram_vectors(texts, chunk=16)  # in 3 chunks
    got = (v @ v.T).toarray()
    for i in range(len(texts)):
        for j in range(len(texts)):
            if not texts[i] or not texts[j]:
                assert got[i, j] == 0  # no gram at all: never near anything
                continue
            assert abs(got[i, j] - _exact_cosine(texts[i], texts[j])) < 0.01, (i, j)
    assert abs(got[0, -2] - 1) < 1e-5  # case and spacing are folded
    head = " ".join(words * 20)  # 1,000 characters and more
    tails = char_gram_vectors([head[:1000] + " market shares", head[:1000] + " 这是文本改写"])
    assert abs((tails[0] @ tails[1].T).toarray()[0, 0] - 1) < 1e-5  # only the first 1,000 characters count


def test_near_duplicates_cross_the_split_in_any_script():
    from m3cls.data.inspection import near_duplicates

    base_zh = "这是一段由人类撰写的中文段落，讲述了一个小镇在冬天里发生的故事，以及居民们如何面对大雪的考验。"
    base_en = "The central bank raised interest rates by a quarter point on Thursday, its third rise this year."
    train = [base_zh, base_en, "An unrelated text about a football match in the rain."]
    val = [base_zh.replace("小镇", "小城"), base_en.replace(" ", "  ").replace("Thursday", "Thursday,"),
           "Completely different words about films and music awards.", base_en]
    report = near_duplicates(train, val)
    assert report["count"] == 2 and report["checked"] == 4  # the exact copy is leakage, counted elsewhere
    assert report["examples"] == [val[0][:80], val[1][:80]]

"""evaluate reads each text through the tokenizer once: the logits and the unknown-token warning share it."""

from conftest import make_texts, write_json

from m3cls.cli import main


def test_evaluate_tokenizes_once_and_still_warns_of_unreadable_texts(trained_xlmr, tmp_path, capsys,
                                                                     monkeypatch):
    from m3cls.model.tokens import TextEncoder

    records = [{"text": t, "label": y} for t, y in make_texts(20, seed=3)]
    records += [{"text": "这是一个模型读不懂的中文句子，全是未知的字。", "label": "Human"} for _ in range(20)]
    data = write_json(tmp_path / "mixed.json", records)
    calls = []
    real = TextEncoder._tokenize
    monkeypatch.setattr(TextEncoder, "_tokenize", lambda self, texts: calls.append(len(texts)) or real(self, texts))
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data]) == 0
    err = capsys.readouterr().err
    assert calls == [40]  # one pass over the 40 texts
    assert "warning" in err and "evaluated records" in err

"""Text the model cannot read: the unknown-token share per text, the warning, and the training data's share."""

import json
import os
import re

import httpx
import pytest
from test_serving import start

from m3cls.cli import main
from m3cls.data.inspection import (
    TEXT_UNK_WARN_SHARE,
    token_stats,
    training_unknown_share,
    unknown_text_warning,
)

FOREIGN = "Ж Ω Й Ђ Ѣ"  # characters the tiny tokenizers never saw: each becomes the unknown token
NORMAL = "furthermore the tapestry of this landscape is crucial"


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("m3cls ") and "warning:" in line]


def test_a_text_outside_the_vocabulary_warns_and_a_normal_text_does_not(trained_xlmr, capsys):
    assert main(["predict", "--model_path", trained_xlmr, "--text", FOREIGN, "--json"]) == 0
    captured = capsys.readouterr()
    share = json.loads(captured.out)["unknown_token_share"]
    assert share > TEXT_UNK_WARN_SHARE
    assert _warnings(captured.err) == [
        f"m3cls predict: warning: this text: {share:.1%} unknown tokens; training data: 0.0%. The model's "
        f"vocabulary most likely does not cover its language, so the prediction is unreliable"]
    assert main(["predict", "--model_path", trained_xlmr, "--text", NORMAL]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"Text: {NORMAL}\n") and _warnings(captured.err) == []


def test_input_gets_one_summary_warning_and_a_share_per_line(trained_xlmr, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text(f"{NORMAL}\nlol yeah kinda weird\n{FOREIGN}\n{NORMAL}\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    shares = [r["unknown_token_share"] for r in rows]
    assert shares[2] > TEXT_UNK_WARN_SHARE and shares[0] == shares[1] == shares[3] == 0.0
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and warnings[0].startswith(
        f"m3cls predict: warning: 1 of 4 predicted records (25.0%) have more than 10% unknown tokens (the most: "
        f"index 2, {shares[2]:.1%}); training data: 0.0%.")
    source.write_text(f"{NORMAL}\n", encoding="utf-8")
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(source), "--output", str(out)]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_the_share_is_the_one_inspect_measures(trained_xlmr):
    from m3cls import Classifier

    clf = Classifier.from_pretrained(trained_xlmr)
    texts = [FOREIGN, NORMAL, "lol 哈哈 Ж yeah"]
    shares = clf.unknown_token_shares(texts)
    assert shares == [token_stats(clf.tokenizer, [t], 64)["unknown_token_share"] for t in texts]
    assert shares[0] > 0.3 and shares[1] == 0.0 and clf.unknown_token_shares([]) == []


def test_the_model_folder_records_the_training_share(trained_xlmr):
    info = json.load(open(os.path.join(trained_xlmr, "m3cls.json")))
    assert training_unknown_share(info) == info["inspection"]["tokens"]["unknown_token_share"] == 0.0
    assert training_unknown_share({}) is None and training_unknown_share({"inspection": {"tokens": {}}}) is None
    assert "training data: not recorded" in unknown_text_warning(0.5, None)
    assert "training data: 1.0%" in unknown_text_warning(0.62, 0.01)
    assert unknown_text_warning(TEXT_UNK_WARN_SHARE, 0.0) is None


def test_the_service_returns_the_share_per_prediction(trained_xlmr):
    with start(trained_xlmr) as live:
        r = httpx.post(f"{live.url}/predict", json={"texts": [NORMAL, FOREIGN]})
    assert r.status_code == 200
    first, second = r.json()["predictions"]
    assert first["unknown_token_share"] == 0.0 and second["unknown_token_share"] > TEXT_UNK_WARN_SHARE


def test_the_page_shows_a_notice_for_unknown_text(trained_xlmr, tmp_path):
    from selenium.webdriver.common.by import By
    from test_webpage import _driver, open_page, read_bars

    from m3cls.serving.page import PAGE

    assert re.search(r"const UNK_WARN = ([\d.]+);", PAGE).group(1) == str(TEXT_UNK_WARN_SHARE)
    driver = _driver(tmp_path)
    try:
        with start(trained_xlmr) as live:
            wait = open_page(driver, live.url)
            notice = driver.find_element(By.ID, "notice")
            for text, shown in ((FOREIGN, True), (NORMAL, False)):
                box = driver.find_element(By.ID, "text")
                box.clear()
                box.send_keys(text)
                driver.find_element(By.ID, "classify").click()
                wait.until(lambda d: len(read_bars(d)) == 2 and notice.is_displayed() == shown)
                if shown:
                    assert "% of this text's tokens are unknown to the model" in notice.text
    finally:
        driver.quit()


@pytest.mark.parametrize("share,warns", [(0.0, False), (TEXT_UNK_WARN_SHARE, False), (0.11, True)])
def test_the_threshold(share, warns):
    assert (unknown_text_warning(share, 0.0) is not None) == warns

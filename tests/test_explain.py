"""Why a text got its label: word occlusion on a model where one marker word decides the label."""

import json
import re

from conftest import MARKER, make_marker_texts

from m3cls.cli import main


def _top(attributions):
    return max(attributions, key=lambda pair: pair[1])[0]


def test_the_marker_word_gets_the_largest_attribution(marker_xlmr, tmp_path):
    pairs = make_marker_texts(16, seed=7)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in pairs))
    out, page = tmp_path / "p.jsonl", tmp_path / "why.html"
    assert main(["predict", "--model_path", marker_xlmr, "--input", str(source), "--output", str(out),
                 "--explain_html", str(page), "--precision", "fp32"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for (text, label), row in zip(pairs, rows):
        words = [w for w, _ in row["attributions"]]
        assert words == text.split()  # tokens merged back into the text's words, in order
        if label == "GPT":
            assert row["label"] == "GPT" and _top(row["attributions"]) == MARKER
            assert dict(row["attributions"])[MARKER] > 0.05
    html = page.read_text()
    marks = re.findall(r'<mark data-score="([-0-9.]+)"[^>]*>([^<]+)</mark>', html)
    assert len(marks) == sum(len(t.split()) for t, _ in pairs)
    first_gpt = next(i for i, (_, y) in enumerate(pairs) if y == "GPT")
    section = html.split("<section>")[first_gpt + 1]
    scored = re.findall(r'<mark data-score="([-0-9.]+)"[^>]*>([^<]+)</mark>', section)
    assert max(scored, key=lambda m: float(m[0]))[1] == MARKER


def test_explain_with_windows_and_on_one_text(marker_xlmr, capsys):
    text = " ".join(["the of and to in it is was for on"] * 3 + [MARKER] + ["that this with a"] * 3)
    assert main(["predict", "--model_path", marker_xlmr, "--text", text, "--explain", "--json", "--long_text",
                 "chunks", "--max_length", "24", "--stride", "8", "--precision", "fp32"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["n_chunks"] > 1 and len(row["attributions"]) == len(text.split())
    # the mean over windows of filler calls it Human; taking the marker out of its windows moves it most
    assert row["label"] == "Human"
    strongest = max(row["attributions"], key=lambda pair: abs(pair[1]))
    assert strongest[0] == MARKER and strongest[1] < 0
    assert main(["predict", "--model_path", marker_xlmr, "--text", f"the {MARKER} of and", "--explain"]) == 0
    assert f"Words that moved GPT most: {MARKER} +" in capsys.readouterr().out
    # truncated: only the words the model reads are scored
    assert main(["predict", "--model_path", marker_xlmr, "--text", text, "--explain", "--json", "--max_length",
                 "16"]) == 0
    words = [w for w, _ in json.loads(capsys.readouterr().out)["attributions"]]
    assert 0 < len(words) < len(text.split()) and words == text.split()[: len(words)]

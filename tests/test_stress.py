"""Perturbations and m3cls stress (issue 24): each perturbation changes what it should, deterministically."""

from __future__ import annotations

import json
import re

import pytest
from conftest import make_texts

from m3cls.cli import main
from m3cls.data.perturb import HOMOGLYPHS, PERTURBATIONS, ZERO_WIDTH, available, parse_perturbations, perturb
from m3cls.errors import ConfigError

ENGLISH = ("Furthermore, the landscape is robust. Honestly, it kinda works! Does it matter? "
           "The tapestry of this seamless approach is crucial.")
CHINESE = "值得注意的是，这个方法很好。我觉得，它很有用！综上所述，结果不错。"
TEXTS = (ENGLISH, CHINESE)


def _words(text):
    return text.split()


def _sentences(text):
    return sorted(s.strip() for s in re.findall(r"[^.!?。！？]+[.!?。！？]*", text) if s.strip())


CHECKS = {  # what each perturbation must keep (given the original and the perturbed text)
    "homoglyphs": lambda a, b: "".join({v: k for k, v in HOMOGLYPHS.items()}.get(c, c) for c in b) == a,
    "zero_width": lambda a, b: "".join(c for c in b if c not in ZERO_WIDTH) == a,
    "whitespace": lambda a, b: re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b),
    "punctuation_width": lambda a, b: perturb(b, "punctuation_width") == a and re.sub(r"\W", "", a) == re.sub(r"\W", "", b),
    "case": lambda a, b: a.lower() == b.lower(),
    "typos": lambda a, b: len(_words(a)) == len(_words(b)) and sum(x != y for x, y in zip(_words(a), _words(b))) >= 1,
    "word_deletion": lambda a, b: len(b) < len(a) and _subsequence(b.split() if " " in a else list(b),
                                                                  a.split() if " " in a else list(a)),
    "sentence_reorder": lambda a, b: _sentences(a) == _sentences(b),
    "truncate_half": lambda a, b: a.startswith(b) and 0.35 * len(a) <= len(b) <= 0.55 * len(a),
}
#: perturbations that can leave a text as it is (nothing of theirs in it)
NOT_FOR = {"case": CHINESE, "typos": CHINESE, "homoglyphs": CHINESE}


def _subsequence(short, long):
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_each_perturbation_changes_what_it_should_and_is_deterministic(name):
    for text in TEXTS:
        changed = perturb(text, name, seed=3)
        assert changed == perturb(text, name, seed=3)  # the same text, name and seed: the same result
        if NOT_FOR.get(name) == text:
            assert changed == text
            continue
        assert changed != text, f"{name} left {text!r} as it was"
        assert CHECKS[name](text, changed), f"{name} changed more than it should: {changed!r}"
    if name not in ("punctuation_width", "truncate_half"):  # random ones vary with the seed
        assert len({perturb(ENGLISH, name, seed=s) for s in range(6)}) > 1


def test_every_perturbation_is_checked_and_unknown_names_are_one_line():
    assert set(PERTURBATIONS) - set(CHECKS) == {"simplified_traditional"}
    assert parse_perturbations("case, typos") == ["case", "typos"]
    with pytest.raises(ConfigError, match="unknown perturbation 'typo'; known: homoglyphs, zero_width"):
        parse_perturbations("typo,case")


def test_simplified_traditional_converts_or_is_skipped_with_a_line():
    if available("simplified_traditional"):
        assert perturb("简体中文", "simplified_traditional") == "簡體中文"
        assert perturb("簡體中文", "simplified_traditional") == "简体中文"
    else:
        with pytest.raises(ConfigError, match=r'pip install "m3cls\[opencc\]"'):
            perturb("简体中文", "simplified_traditional")


def _labelled(tmp_path, n=60):
    """Labelled texts, every 5th label flipped: the clean decisions differ from the truth, so a flip (against the
    clean decision) is not an error (against the truth)."""
    path = tmp_path / "stress.jsonl"
    rows = [{"text": t, "label": ({"GPT": "Human", "Human": "GPT"}[y] if i % 5 == 0 else y)}
            for i, (t, y) in enumerate(make_texts(n, seed=31))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_stress_reports_flips_beside_clean_figures_equal_to_evaluate(trained_xlmr, tmp_path, capsys):
    from m3cls import Classifier

    data, out, ev = _labelled(tmp_path), tmp_path / "stress.json", tmp_path / "eval.json"
    assert main(["stress", "--model_path", trained_xlmr, "--data_path", data, "--perturbations",
                 "truncate_half,case,simplified_traditional", "--positive_label", "GPT", "--output", str(out),
                 "--report", str(tmp_path / "rep")]) == 0
    assert "flip_rates.png" in (tmp_path / "rep" / "index.html").read_text()
    captured = capsys.readouterr()
    assert "truncate_half" in captured.out and "flipped" in captured.out
    if not available("simplified_traditional"):
        assert 'skipped simplified_traditional: needs opencc; run: pip install "m3cls[opencc]"' in captured.err
    result = json.loads(out.read_text())
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", data, "--by", "length",
                 "--positive_label", "GPT", "--output", str(ev)]) == 0
    evaluation = json.loads(ev.read_text())
    clean = result["clean"]
    assert clean["accuracy"] == pytest.approx(evaluation["after"]["accuracy"])
    whole = [s for s in evaluation["slices"]["length"].values()]
    assert clean["n"] == sum(s["n"] for s in whole) == 60
    assert clean["tpr_at_fpr"]["0.05"]["threshold"] == evaluation["slice_settings"]["fpr_thresholds"]["0.05"]
    texts = [json.loads(line)["text"] for line in open(data)]
    clf = Classifier.from_pretrained(trained_xlmr)
    before = [p.label for p in clf.predict(texts)]
    after = [p.label for p in clf.predict([perturb(t, "truncate_half", 0) for t in texts])]
    half = result["perturbations"]["truncate_half"]
    assert half["flip_rate"] == pytest.approx(sum(a != b for a, b in zip(before, after)) / 60)
    assert half["tpr_at_fpr"]["0.05"]["threshold"] == clean["tpr_at_fpr"]["0.05"]["threshold"]  # kept
    assert half["changed_share"] == 1.0 and result["perturbations"]["case"]["changed_share"] > 0.5


def test_stress_unknown_perturbation_is_one_line(trained_xlmr, tmp_path, capsys):
    assert main(["stress", "--model_path", trained_xlmr, "--data_path", _labelled(tmp_path), "--perturbations",
                 "homoglyph"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "known: homoglyphs" in err

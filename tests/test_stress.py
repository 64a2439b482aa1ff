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
    for key in ("accuracy", "macro_f1"):
        assert clean[key] == pytest.approx(evaluation["after"][key], rel=1e-9, abs=1e-12), key
    whole = [s for s in evaluation["slices"]["length"].values()]
    assert result["n"] == sum(s["n"] for s in whole) == 60
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


# -- multi-label and regression (issue 24, item 3): the task's own scores and how the answers moved -----------
TASK_RUNS = ["multilabel_run", "regression_run"]


@pytest.mark.parametrize("run", TASK_RUNS)
def test_stress_of_other_tasks_reports_their_own_scores_clean_equal_to_evaluate(run, request, tmp_path, capsys):
    from m3cls import Classifier
    from m3cls.tasks import get_task

    trained = request.getfixturevalue(run)
    model, data = trained["model"], trained["val"]
    out, ev = tmp_path / "stress.json", tmp_path / "eval.json"
    assert main(["stress", "--model_path", model, "--data_path", data, "--perturbations", "truncate_half,case",
                 "--output", str(out), "--report", str(tmp_path / "rep"), "--precision", "fp32"]) == 0
    printed = capsys.readouterr().out
    assert main(["evaluate", "--model_path", model, "--data_path", data, "--output", str(ev),
                 "--precision", "fp32"]) == 0
    result, evaluation = json.loads(out.read_text()), json.loads(ev.read_text())
    task = get_task(result["task"])
    assert result["metric_keys"] == list(task.stress_keys) and len(task.stress_keys) >= 5
    for key in task.stress_keys:
        assert result["clean"][key] == pytest.approx(evaluation["after"][key], rel=1e-9, abs=1e-12), key
        assert key in printed
    assert "detection_rate" not in result["clean"] and "fpr_thresholds_clean" not in result
    clf = Classifier.from_pretrained(model, precision="fp32")
    texts = [row["text"] for row in json.load(open(data))]
    before = clf.predict(texts)
    after = clf.predict([perturb(t, "truncate_half", 0) for t in texts])
    half = result["perturbations"]["truncate_half"]
    assert half["changed_share"] == 1.0
    logits, _ = clf.logits_and_chunks([perturb(t, "truncate_half", 0) for t in texts])
    after_eval = clf.task.evaluate(logits, _truth(clf, data), clf.labels.names, clf.temperature, clf.thresholds,
                                   clf.values)
    for key in task.stress_keys:
        assert half[key] == pytest.approx(after_eval["after"][key], rel=1e-9, abs=1e-12), key
    if run == "multilabel_run":
        moved = sum(set(a.labels) != set(b.labels) for a, b in zip(before, after)) / len(texts)
        assert half["flip_rate"] == pytest.approx(moved) and "flipped" in printed
    else:
        shifts = [abs(a.value - b.value) for a, b in zip(before, after)]
        tolerance = 0.1 * json.load(open(f"{model}/m3cls.json"))["target_std"]
        assert result["shift_tolerance"] == pytest.approx(tolerance)
        assert half["mean_abs_shift"] == pytest.approx(sum(shifts) / len(texts)) and half["mean_abs_shift"] > 0
        assert half["shift_share"] == pytest.approx(sum(s > tolerance for s in shifts) / len(texts))
        assert "flip_rate" not in half and "shifted" in printed
    page = (tmp_path / "rep" / "index.html").read_text()
    assert task.stress_keys[0] in page and "detection rate" not in page and "AUROC" not in page
    assert (tmp_path / "rep" / f"{task.change_keys[0]}s.png").is_file()


def _truth(clf, data):
    from m3cls.evaluation.evaluate import labelled_data, truth_of

    return truth_of(clf, labelled_data(clf, data, {}).labels, data)


@pytest.mark.parametrize("run", TASK_RUNS)
def test_stress_positive_label_on_other_tasks_is_one_line(run, request, capsys):
    trained = request.getfixturevalue(run)
    assert main(["stress", "--model_path", trained["model"], "--data_path", trained["val"], "--perturbations",
                 "case", "--positive_label", "formal"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--positive_label scores a single-label model" in err
    assert "Traceback" not in err


def _predictions(**rows):
    from m3cls.inference.classifier import Prediction

    return [Prediction(None, None, None, **row) for row in rows["rows"]]


def test_multilabel_flip_counts_a_changed_set_not_a_new_order():
    from m3cls.tasks import get_task

    before = _predictions(rows=[{"labels": ["a", "b"]}, {"labels": []}, {"labels": ["a"]}, {"labels": ["b"]}])
    after = _predictions(rows=[{"labels": ["b", "a"]}, {"labels": ["a"]}, {"labels": ["a"]}, {"labels": ["a"]}])
    assert get_task("multi_label").stress_change(before, after, {}) == {"flip_rate": 0.5}


def test_regression_shift_share_counts_moves_past_the_tolerance():
    from m3cls.tasks import get_task

    task = get_task("regression")

    class Contract:
        target_std = 2.0

    settings = task.stress_settings(Contract())
    assert settings == {"shift_tolerance": pytest.approx(0.2)}
    before = _predictions(rows=[{"value": v} for v in (1.0, 2.0, 3.0, 4.0)])
    after = _predictions(rows=[{"value": v} for v in (1.1, 2.5, 3.0, 3.0)])
    change = task.stress_change(before, after, settings)
    assert change["shift_share"] == 0.5 and change["mean_abs_shift"] == pytest.approx(0.4)

"""The shortcut audit (issue 24): a planted surface shortcut is flagged, a label-shuffled control is not."""

from __future__ import annotations

import json
import random
import subprocess
import sys

from conftest import COMMON

from m3cls.cli import main
from m3cls.data.shortcuts import shortcut_audit, shortcut_warning


def _planted(n=200, seed=5, shuffle=False):
    """Texts of the same filler words for both labels; only GPT's end with the full-width full stop."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = ("GPT", "Human")[i % 2]
        texts.append(" ".join(rng.choice(COMMON) for _ in range(rng.randint(5, 15))) + ("。" if label == "GPT" else ""))
        labels.append(label)
    if shuffle:
        random.Random(seed + 1).shuffle(labels)
    return texts, labels


def test_planted_shortcut_is_flagged_and_named():
    result = shortcut_audit(*_planted())
    assert result["flagged"] and result["auroc"] >= 0.95
    assert "ends_cjk_full_stop" in result["features"]
    assert shortcut_warning(result).startswith("SHORTCUT: ")


def test_label_shuffled_control_is_silent():
    result = shortcut_audit(*_planted(shuffle=True))
    assert not result["flagged"] and result["auroc"] < 0.7
    assert shortcut_warning(result) is None


def test_many_classes_use_the_macro_f1_rule():
    texts, labels = _planted(n=240)
    three = [("A", "B", "C")[i % 3] for i in range(240)]
    ends = {"A": "。", "B": "!", "C": ""}
    texts = [t.rstrip("。") + ends[y] for t, y in zip(texts, three)]
    result = shortcut_audit(texts, three)
    assert result["flagged"] and result["auroc"] is None and "halfway from chance" in result["rule"]
    random.Random(0).shuffle(three)
    assert not shortcut_audit(texts, three)["flagged"]


def test_inspect_warns_without_importing_torch(tmp_path):
    texts, labels = _planted()
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps([{"text": t, "label": y} for t, y in zip(texts, labels)], ensure_ascii=False))
    code = ("import sys; from m3cls.cli import main; code = main(['inspect', '--data_path', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'inspect imported torch'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, str(planted)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "WARNING: SHORTCUT:" in done.stdout and "ends_cjk_full_stop" in done.stdout


def test_inspect_is_silent_on_the_control(tmp_path, capsys):
    texts, labels = _planted(shuffle=True)
    control = tmp_path / "control.json"
    control.write_text(json.dumps([{"text": t, "label": y} for t, y in zip(texts, labels)], ensure_ascii=False))
    assert main(["inspect", "--data_path", str(control), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shortcuts"]["flagged"] is False
    assert not any("SHORTCUT" in w for w in report["warnings"])

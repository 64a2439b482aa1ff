"""The HTML report renders in a real browser, with every image loaded."""

import html
import os
import re

import numpy as np
from browser import run_chromium

CHECK_PAGE = """<!doctype html><html><body><iframe id="f" src="index.html" width="1000" height="800"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {
  const doc = document.getElementById('f').contentDocument;
  const images = [...doc.images];
  const ok = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-result', ok + '/' + images.length + '/' + doc.title);
});
</script></body></html>"""


def render_check(folder: str, profile: str) -> tuple[int, int, str]:
    with open(os.path.join(folder, "check.html"), "w") as f:
        f.write(CHECK_PAGE)
    dom = run_chromium(["--virtual-time-budget=15000", "--dump-dom", f"file://{folder}/check.html"], profile)
    match = re.search(r'data-result="(\d+)/(\d+)/([^"]*)"', dom)
    assert match, f"the page did not finish loading: {dom[:300]}"
    return int(match.group(1)), int(match.group(2)), html.unescape(match.group(3))


def test_training_report_renders_with_all_images(trained_xlmr, tmp_path):
    folder = os.path.join(trained_xlmr, "report")
    loaded, total, title = render_check(folder, str(tmp_path / "profile"))
    assert total == 5 and loaded == total and title.startswith("m3cls: ")


def test_evaluation_report_renders(tmp_path):
    from m3cls.metrics.calibration import evaluate_logits
    from m3cls.reports.pages import write_report

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3)) * 3
    y = rng.integers(0, 3, 200)
    folder = str(tmp_path / "rep")
    write_report(folder, evaluate_logits(logits, y, ("a", "b", "c"), 2.0), title="eval <check>")
    loaded, total, title = render_check(folder, str(tmp_path / "profile"))
    assert (loaded, total) == (3, 3) and title == "eval <check>"  # no history, no baseline: 3 plots

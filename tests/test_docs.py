"""The docs cannot drift (issue 23): the generated reference covers every flag, contract field, output field and
route; the how-to pages' Python blocks run on the tiny models; the README stays short and keeps its commands."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from m3cls.cli import COMMANDS, main, parser
from m3cls.cli.helpfmt import flag_names

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks():
    spec = importlib.util.spec_from_file_location("m3cls_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def _page(name: str) -> str:
    """A docs page with its reference markers rendered, as the site shows it."""
    return hooks.on_page_markdown((DOCS / name).read_text(encoding="utf-8"))


def test_every_flag_of_every_command_is_in_the_cli_reference():
    page = _page("reference/cli.md")
    for command in COMMANDS:
        assert f"## m3cls {command}" in page, command
        for flag in flag_names(parser(command)):
            assert f'<span id="{command}-{flag[2:]}"></span>`{flag}' in page, f"{command} {flag}"


def test_cli_reference_groups_as_help_does_with_defaults(monkeypatch):
    monkeypatch.delenv("M3CLS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    page = hooks.render("cli", "train")
    assert page.index("### Data") < page.index("### Model") < page.index("### Output") \
        < page.index("### All Hugging Face TrainingArguments")
    assert re.search(r"`--model_name_or_path MODEL_NAME_OR_PATH` \| `BAAI/bge-m3` \|", page)
    assert re.search(r"`--method \{finetune,probe\}` \| `finetune` \|", page)
    assert "`~/.cache/m3cls`" in page and os.path.expanduser("~") + "/" not in page   # no build machine's home


def test_every_contract_field_is_documented_in_the_reference():
    from m3cls.model.contract import FORMAT_VERSION, VERSION_HISTORY, ModelContract

    page = _page("reference/contract.md")
    for f in dataclasses.fields(ModelContract):
        assert f.metadata.get("help"), f"ModelContract.{f.name} has no help metadata"
        assert f'<span id="field-{f.name}"></span>`{f.name}`' in page
    assert FORMAT_VERSION in VERSION_HISTORY and f"writes version {FORMAT_VERSION}" in page


def _declared(name: str) -> set[str]:
    return {field for field, _, _ in hooks.OUTPUT_FIELDS[name]}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_predict_and_evaluate_write_only_documented_fields(trained_xlmr, tmp_path, capsys):
    texts = tmp_path / "in.txt"
    texts.write_text("first text here\n\nthe second one\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model_path", trained_xlmr, "--input", str(texts), "--output", str(out),
                 "--on_error", "skip", "--abstain_below", "0.9", "--explain", "--include_text"]) == 0
    written = set().union(*(row.keys() for row in _lines(out)))
    assert {"index", "label", "error", "decision", "attributions", "text"} <= written
    assert written <= _declared("predict"), written - _declared("predict")
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in
                            [("alpha beta", "GPT"), ("gamma delta", "Human")] * 3), encoding="utf-8")
    result = tmp_path / "eval.json"
    assert main(["evaluate", "--model_path", trained_xlmr, "--data_path", str(data), "--output", str(result)]) == 0
    keys = set(json.loads(result.read_text()))
    assert keys <= _declared("evaluate"), keys - _declared("evaluate")
    capsys.readouterr()


def test_stress_of_every_task_writes_exactly_the_documented_fields(trained_xlmr, multilabel_run, regression_run,
                                                                   messages_file, tmp_path, capsys):
    top, rows = set(), set()
    for model, data, flags in ((trained_xlmr, messages_file, ["--positive_label", "GPT"]),
                               (multilabel_run["model"], multilabel_run["val"], []),
                               (regression_run["model"], regression_run["val"], [])):
        out = tmp_path / "stress.json"
        assert main(["stress", "--model_path", model, "--data_path", data, "--perturbations", "case",
                     "--output", str(out), *flags]) == 0
        result = json.loads(out.read_text())
        assert set(result) <= _declared("stress"), set(result) - _declared("stress")
        written = set(result["perturbations"]["case"]) | set(result["clean"])
        assert written <= _declared("stress_row"), written - _declared("stress_row")
        top, rows = top | set(result), rows | written
    assert (top, rows) == (_declared("stress"), _declared("stress_row"))   # nothing declared that none writes
    capsys.readouterr()


def test_cv_and_audit_write_only_documented_fields(tiny_xlmr, messages_file, tmp_path, capsys):
    pytest.importorskip("cleanlab")
    probe = ["--model_name_or_path", tiny_xlmr, "--data_path", messages_file, "--method", "probe",
             "--max_length", "48", "--precision", "fp32", "--pooling", "mean", "--folds", "2"]
    capsys.readouterr()
    assert main(["cv", *probe, "--output_dir", str(tmp_path / "cv")]) == 0
    assert set(json.loads(capsys.readouterr().out)) == _declared("cv")
    assert set().union(*map(dict.keys, _lines(tmp_path / "cv" / "oof_predictions.jsonl"))) == \
        _declared("oof_predictions")
    assert main(["audit", *probe, "--output_dir", str(tmp_path / "audit")]) == 0
    assert set(json.loads(capsys.readouterr().out)) == _declared("audit")
    suspects = _lines(tmp_path / "audit" / "suspects.jsonl")
    if suspects:
        assert set().union(*map(dict.keys, suspects)) == _declared("suspects")


def test_every_route_and_request_field_of_the_service_is_in_the_http_reference(trained_xlmr):
    pytest.importorskip("fastapi")
    from m3cls import Classifier
    from m3cls.serving.app import ServeLimits, create_app

    app = create_app(Classifier.from_pretrained(trained_xlmr, precision="fp32"), ServeLimits())
    served = {(method, route.path) for route in app.routes for method in getattr(route, "methods", ())
              if not route.path.startswith(("/docs", "/openapi", "/redoc")) and method != "HEAD"}
    documented = {(method, path) for method, path, _, _ in hooks.http_routes()}
    assert served == documented
    schema = app.openapi()["components"]["schemas"]["PredictRequest"]["properties"]
    assert set(schema) == {name for name, _, _ in hooks.request_fields()}
    page = _page("reference/http-api.md")
    for code in (401, 411, 413, 422, 503, 504):
        assert f"| {code} |" in page
    for name, _, _ in hooks.metric_rows():
        assert f"`{name}`" in page


def _python_blocks(folder: str):
    """(page, block) for every ```python block of the pages in ``folder`` not marked '<!-- not run: why -->'."""
    for page in sorted((DOCS / folder).glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"(<!-- not run: [^>]+-->\s*)?```python\n(.*?)```", text, re.S):
            if not match.group(1):
                yield page.name, match.group(2)


BLOCKS = list(_python_blocks("how-to"))


def test_how_to_pages_have_python_blocks_to_run():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("page, block", BLOCKS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BLOCKS)])
def test_python_blocks_of_how_to_pages_run(page, block, trained_xlmr, tiny_xlmr, messages_file, tmp_path,
                                           monkeypatch, capsys):
    """Each block runs in a folder holding ``model`` (the tiny trained model) and ``train.json``; the bundled
    model's name stands for the tiny untrained encoder."""
    shutil.copytree(trained_xlmr, tmp_path / "model")
    shutil.copy(messages_file, tmp_path / "train.json")
    monkeypatch.chdir(tmp_path)
    code = block.replace('"bundled"', repr(tiny_xlmr))
    exec(compile(code, f"docs/how-to/{page}", "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.strip()   # every block prints what it shows


def test_readme_is_short_and_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= 15_000, len(readme)
    text = readme.decode("utf-8")
    assert 'pip install torch==2.13.0 && pip install -e ".[demo]" && m3cls demo' in text
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && ruff check . && python -m pytest' in text
    assert 'pip install -e ".[docs]" && mkdocs serve' in text


def test_readme_links_into_pages_that_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)", text)
    assert targets
    for target in targets:
        assert (ROOT / target).is_file(), target


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert len(pages) >= 12
    assert {p for p in pages if p not in nav} == set()

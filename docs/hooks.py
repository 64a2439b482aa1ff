"""MkDocs hook: the reference pages are generated from the code at every build, never copied by hand.

A page holds a marker such as ``<!-- m3cls-reference: cli train -->``; ``on_page_markdown`` replaces it with
what ``render`` makes of it:

- ``cli COMMAND``: the command's description, usage, every flag by argument group (as ``--help`` shows them:
  ``m3cls.cli.parser``), with its default and help, and the examples;
- ``contract``: every ``m3cls.json`` field from ``ModelContract``'s dataclass fields and their metadata, and the
  format versions;
- ``outputs COMMAND``: the fields of a command's output (declared in ``OUTPUT_FIELDS`` below; the test suite
  runs the commands and checks that every field they write is declared);
- ``http``: the routes, request fields and status codes read from ``m3cls.serving``'s source, and the metrics
  from a live ``ServeMetrics`` registry.

``tests/test_docs.py`` builds these pages' text the same way and checks that nothing can drift.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import re
from pathlib import Path

MARKER = re.compile(r"<!-- m3cls-reference: (\w+)(?: (\w+))? -->")
SRC = Path(__file__).resolve().parents[1] / "src" / "m3cls"


def on_page_markdown(markdown: str, page=None, config=None, files=None) -> str:
    """Replace every reference marker on a page by its generated text."""
    return MARKER.sub(lambda m: render(m.group(1), m.group(2)), markdown)


def render(kind: str, argument: str | None = None) -> str:
    """The generated Markdown for one marker."""
    if kind == "cli":
        return cli_markdown(argument)
    if kind == "contract":
        return contract_markdown()
    if kind == "outputs":
        return outputs_markdown(argument)
    if kind == "http":
        return http_markdown()
    if kind == "layout":
        return layout_markdown()
    raise ValueError(f"unknown reference marker {kind!r}")


def _cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "off" if isinstance(action, argparse._StoreTrueAction) else "on"
    value = action.default
    if value is None or value == argparse.SUPPRESS:
        return "—"
    text = str(value)
    home = os.path.expanduser("~")
    if home != "~" and text.startswith(home):  # a path under the build machine's home reads as ~
        text = "~" + text[len(home):]
    return f"`{text}`"


def flag_rows(p: argparse.ArgumentParser, command: str) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """(group title, [(flag, anchor, default, help)]) in ``--help`` order."""
    from m3cls.cli.helpfmt import HelpFormatter

    formatter = HelpFormatter(p.prog)
    groups = []
    for group in p._action_groups:
        rows = []
        for action in group._group_actions:
            if not action.option_strings or action.dest == "help":
                continue
            name = next((s for s in action.option_strings if s.startswith("--") and "-" not in s[2:]),
                        action.option_strings[0])
            invocation = formatter._format_action_invocation(action)
            text = (action.help or "").replace("%(default)s", str(action.default)).replace("%%", "%")
            rows.append((invocation, f"{command}-{name[2:]}", _default(action), text))
        if rows:
            groups.append((group.title, rows))
    return groups


def cli_markdown(command: str) -> str:
    """One command's reference: description, usage, flags by group, examples."""
    from m3cls.cli import COMMANDS, parser
    from m3cls.cli.examples import EXAMPLES

    p = parser(command)
    summary = COMMANDS[command]
    out = [summary[0].upper() + summary[1:] + ".", "", p.description or "", "", "```text", p.format_usage().strip(),
           "```", ""]
    for title, rows in flag_rows(p, command):
        out += [f"### {title[0].upper() + title[1:]}", "", "| flag | default | what it does |", "|---|---|---|"]
        out += [f'| <span id="{anchor}"></span>`{_cell(flag)}` | {_cell(default)} | {_cell(text)} |'
                for flag, anchor, default, text in rows]
        out.append("")
    out += ["### Examples", "", "```bash"]
    for comment, line in EXAMPLES.get(command, ()):
        out += [comment, line]
    return "\n".join(out + ["```", ""])


def contract_markdown() -> str:
    """Every ``m3cls.json`` field: name, type, default (what a file without the field means), meaning."""
    from m3cls.model.contract import FORMAT_VERSION, VERSION_HISTORY, ModelContract

    out = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(ModelContract):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`" if f.default is not None else "`null`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        out.append(f'| <span id="field-{f.name}"></span>`{f.name}` | `{_cell(f.type)}` | {_cell(default)} | '
                   f'{_cell(f.metadata.get("help", ""))} |')
    out += ["", f"Versions (this release writes version {FORMAT_VERSION}):", ""]
    out += [f"- **{version}**: {text}" for version, text in sorted(VERSION_HISTORY.items())]
    return "\n".join(out + [""])


#: each command's output fields: (name, when it is there, meaning). tests/test_docs.py runs the commands and
#: checks that every field they write is here.
OUTPUT_FIELDS = {
    "predict": [
        ("index", "always", "the record's position in the input, from 0"),
        ("label", "single-label", "the most probable label"),
        ("label_id", "single-label", "its id (config.json's id2label)"),
        ("probabilities", "classification", "label -> probability at the temperature (softmax; multi-label: "
                                            "sigmoid per label)"),
        ("labels", "multi-label", "every label whose probability reaches its threshold, most probable first"),
        ("value", "regression", "the predicted number, in the target's units"),
        ("unknown_token_share", "always", "share of the text's tokens that are the unknown token"),
        ("decision", "a saved rule or --abstain_below", "the rule's label, or 'uncertain'"),
        ("n_chunks", "--long_text chunks", "windows the text was read in"),
        ("segments", "--segments", "per window: start, end (character span) and probabilities"),
        ("attributions", "--explain", "[[word, score], ...] in text order: each word's effect on the decided "
                                      "label (word occlusion)"),
        ("text", "--include_text", "the input text"),
        ("error", "--on_error skip, a bad record", "why the record was skipped (the line has only index and "
                                                  "error)"),
    ],
    "evaluate": [
        ("n", "single-label", "labelled texts scored"),
        ("before", "single-label", "scores at temperature 1: accuracy, macro_f1, log_loss, ece, per_class, "
                                   "confusion_matrix"),
        ("after", "single-label", "the same at the model's temperature, and temperature"),
        ("temperature", "single-label", "the model's temperature the 'after' scores are at"),
        ("decision", "a saved rule", "the saved rule's rates on this data, with 95% intervals"),
        ("risk_coverage", "single-label", "coverage and accuracy when abstaining below each confidence, aurc"),
        ("task", "multi-label, regression", "the model's task"),
    ],
    "stress": [
        ("task", "always", "the model's task"),
        ("n", "always", "labelled texts perturbed and scored"),
        ("seed", "always", "the perturbations' seed"),
        ("positive_label", "always", "the label scored as a detector (single-label), or null"),
        ("metric_keys", "always", "the task's own scores in each row, as 'evaluate' names them (single-label: "
                                  "accuracy, macro_f1; multi-label: micro_f1, macro_f1, samples_f1, "
                                  "subset_accuracy, hamming_loss; regression: rmse, mae, r2, pearson, spearman)"),
        ("change_keys", "always", "how the answers moved, in each perturbation's row (flip_rate; regression: "
                                  "shift_share, mean_abs_shift)"),
        ("shift_tolerance", "regression", "how far a prediction must move to count in shift_share: a tenth of "
                                          "the training target's standard deviation, in the target's units"),
        ("fpr_thresholds_clean", "a positive label", "the thresholds that give FPR 1% and 5% on the clean "
                                                     "negatives; every row's TPR is read at them"),
        ("clean", "always", "the metric_keys on the unperturbed texts, equal to 'evaluate''s; with a positive "
                            "label also the detector's figures"),
        ("perturbations", "always", "per perturbation name, a row (fields below)"),
        ("skipped", "always", "perturbation -> why it was left out (a missing optional package)"),
    ],
    "stress_row": [
        ("changed_share", "always", "share of texts the perturbation changed at all"),
        ("flip_rate", "single-label, multi-label", "share of texts whose decision changed: the decided label (the "
                                                   "saved rule's), or the set of labels"),
        ("shift_share", "regression", "share of predictions that moved by more than shift_tolerance"),
        ("mean_abs_shift", "regression", "mean absolute change of the predicted value, in the target's units"),
        ("accuracy", "single-label", "as 'evaluate' scores it, on the perturbed texts"),
        ("macro_f1", "single-label, multi-label", "as 'evaluate' scores it, on the perturbed texts"),
        *((key, "multi-label", "as 'evaluate' scores it, on the perturbed texts")
          for key in ("micro_f1", "samples_f1", "subset_accuracy", "hamming_loss")),
        *((key, "regression", "as 'evaluate' scores it, on the perturbed texts")
          for key in ("rmse", "mae", "r2", "pearson", "spearman")),
        ("positives", "a positive label", "the file's texts of the positive label"),
        ("negatives", "a positive label", "the file's other texts"),
        ("detection_rate", "a positive label", "share of the positives the model's decision flags, with a 95% "
                                               "interval"),
        ("fpr", "a positive label", "share of the negatives it flags, with a 95% interval"),
        ("tpr_at_fpr", "a positive label", "TPR at fpr_thresholds_clean (a deployed detector keeps its "
                                           "threshold), with 95% intervals"),
        ("auroc", "a positive label", "the positives' scores against the negatives'"),
    ],
    "cv": [
        ("output_dir", "always", "the folder written"),
        ("folds", "always", "K"),
        ("method", "always", "finetune or probe"),
        ("accuracy_mean", "always", "mean accuracy over the folds"),
        ("accuracy_std", "always", "its standard deviation"),
        ("macro_f1_mean", "always", "mean macro-F1 over the folds"),
        ("macro_f1_std", "always", "its standard deviation"),
    ],
    "oof_predictions": [
        ("index", "always", "the record's position in --data_path"),
        ("label", "always", "its given label"),
        ("fold", "always", "the fold that held it out"),
        ("predicted", "always", "the out-of-fold prediction"),
        ("probabilities", "always", "label -> out-of-fold probability at T=1"),
    ],
    "audit": [
        ("output_dir", "always", "the folder written"),
        ("suspects_file", "always", "suspects.jsonl's path"),
        ("records", "always", "records audited"),
        ("suspects", "always", "records listed as suspects"),
        ("label_issues", "always", "suspects by confident learning"),
        ("conflicting_duplicate_groups", "always", "groups of identical texts with different labels"),
        ("near_duplicate_conflicts", "always", "near-duplicates (embedding cosine) with different labels"),
    ],
    "suspects": [
        ("index", "always", "the record's position in --data_path"),
        ("given_label", "always", "its label in the data"),
        ("suggested_label", "always", "the out-of-fold prediction, or a duplicate's other label"),
        ("score", "always", "1 minus the out-of-fold probability of the given label"),
        ("reasons", "always", "label_issue, conflicting_duplicate, near_duplicate_conflict"),
        ("related", "always", "the indices of its duplicates"),
        ("probability_given", "always", "the out-of-fold probability of the given label"),
        ("probability_suggested", "always", "the out-of-fold probability of the suggested label"),
        ("text", "always", "the first 100 characters of the text"),
    ],
}


def outputs_markdown(command: str) -> str:
    """The table of one command's (or one output file's) fields."""
    rows = ["| field | present | meaning |", "|---|---|---|"]
    rows += [f'| <span id="{command}-{name}"></span>`{name}` | {_cell(when)} | {_cell(meaning)} |'
             for name, when, meaning in OUTPUT_FIELDS[command]]
    return "\n".join(rows + [""])


def http_routes() -> list[tuple[str, str, str, bool]]:
    """(method, path, what, in the OpenAPI schema) of every route ``m3cls.serving.app`` declares."""
    tree = ast.parse((SRC / "serving" / "app.py").read_text(encoding="utf-8"))
    routes = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") in ("get", "post"):
                path = deco.args[0].value
                in_schema = not any(k.arg == "include_in_schema" and k.value.value is False for k in deco.keywords)
                doc = (ast.get_docstring(node) or ROUTE_NOTES.get(path, "")).split("\n")[0]
                routes.append((deco.func.attr.upper(), path, doc, in_schema))
    return routes


#: one line for the routes whose handler has no docstring
ROUTE_NOTES = {"/": "the web page (no data; asks for the API key when one is set)",
               "/labels": "labels, temperature, max_length; task and thresholds for other tasks",
               "/predict": "classify texts: one prediction per text, with the fields of a predict line",
               "/metrics": "Prometheus metrics (behind the API key when one is set)"}


def request_fields() -> list[tuple[str, str, str]]:
    """(name, type, default) of ``POST /predict``'s body, from the pydantic model's source."""
    tree = ast.parse((SRC / "serving" / "app.py").read_text(encoding="utf-8"))
    model = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "PredictRequest")
    return [(s.target.id, ast.unparse(s.annotation), ast.unparse(s.value) if s.value else "required")
            for s in model.body if isinstance(s, ast.AnnAssign)]


def status_codes() -> list[tuple[int, str]]:
    """(status, message) of every error the service can answer, from its source (f-string parts as {...})."""
    found = []
    for name in ("app.py", "http.py"):
        for node in ast.walk(ast.parse((SRC / "serving" / name).read_text(encoding="utf-8"))):
            parts = node.args if isinstance(node, ast.Call) else \
                node.value.elts if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) else []
            if len(parts) >= 2 and isinstance(parts[0], ast.Constant) and isinstance(parts[0].value, int) \
                    and 400 <= parts[0].value < 600 and isinstance(parts[1], (ast.Constant, ast.JoinedStr)):
                found.append((parts[0].value, _message(parts[1])))
    return sorted(set(found))


def _message(node) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    return "".join(str(v.value) if isinstance(v, ast.Constant) else "{…}" for v in node.values)


def metric_rows() -> list[tuple[str, str, str]]:
    """(name, type, help) of every metric a live ``ServeMetrics`` registry exposes."""
    from m3cls.serving.metrics import ServeMetrics

    metrics = ServeMetrics(lambda: 0, lambda: 0, lambda: 0)
    rows = []
    for family in metrics.registry.collect():
        suffix = "_total" if family.type == "counter" else ""
        rows.append((family.name + suffix, family.type, family.documentation))
    return rows


def http_markdown() -> str:
    out = ["## Routes", "", "| method | path | what | in /docs |", "|---|---|---|---|"]
    out += [f"| {m} | `{p}` | {_cell(w)} | {'yes' if s else 'no'} |" for m, p, w, s in http_routes()]
    out += ["", "## `POST /predict` body", "", "| field | type | default |", "|---|---|---|"]
    out += [f"| `{n}` | `{_cell(t)}` | `{d}` |" for n, t, d in request_fields()]
    out += ["", "## Status codes", "", "Every error body is `{\"error\": \"...\"}`.", "",
            "| status | message |", "|---|---|"]
    out += [f"| {code} | {_cell(text)} |" for code, text in status_codes()]
    out += ["", "## Metrics", "", "| metric | type | what |", "|---|---|---|"]
    out += [f"| `{n}` | {t} | {_cell(h)} |" for n, t, h in metric_rows()]
    return "\n".join(out + [""])


def layout_markdown() -> str:
    """The package's folders by rank (``RANKS`` of tests/test_layout.py) with each package docstring's first line."""
    tree = ast.parse((SRC.parents[1] / "tests" / "test_layout.py").read_text(encoding="utf-8"))
    ranks = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "RANKS")
    out = ["| rank | folder | what it holds |", "|---|---|---|"]
    for folder, rank in sorted(ranks.items(), key=lambda item: (item[1], item[0])):
        init = SRC / folder / "__init__.py" if folder != "base" else SRC / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        name = "the top modules" if folder == "base" else f"`{folder}/`"
        out.append(f"| {rank} | {name} | {_cell(doc.split(chr(10) + chr(10))[0])} |")
    return "\n".join(out + [""])

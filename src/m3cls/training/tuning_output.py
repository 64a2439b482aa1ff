"""What ``m3cls tune`` writes: trial folders, ``tuning/trials.jsonl``, the ``tuning/index.html`` table, and
the best trial's folder moved into place as the final model (with its card and train_config.yaml updated)."""

from __future__ import annotations

import html
import json
import os
import shutil

from ..files import atomic_open, replace_folder
from ..model.card import write_model_card
from ..model.contract import CONTRACT_FILE, write_contract
from ..model.folder import read_contract
from .runconfig import write_train_config

TRIALS_FILE = "trials.jsonl"


class Files:
    """The output folder of a search: ``trials/trial-N`` while it runs, ``tuning/`` for its record."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.trials_root = os.path.join(output_dir, "trials")
        self.tuning_dir = os.path.join(output_dir, "tuning")
        self.trials_path = os.path.join(self.tuning_dir, TRIALS_FILE)

    def start(self, overwrite: bool) -> None:
        """A fresh record; with --overwrite_output_dir, the trials of an earlier search are removed."""
        if overwrite:
            shutil.rmtree(self.trials_root, ignore_errors=True)
            shutil.rmtree(self.tuning_dir, ignore_errors=True)
        os.makedirs(self.tuning_dir, exist_ok=True)
        with atomic_open(self.trials_path, "--output_dir"):
            pass

    def trial_folder(self, number: int) -> str:
        return os.path.join(self.trials_root, f"trial-{number}")

    def append_trial(self, row: dict) -> None:
        """One complete JSON line per finished trial, so a crash keeps the trials before it."""
        with open(self.trials_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def write_table(self, rows: list[dict], best: int | None) -> str:
        """``tuning/index.html``: one row per trial, the best one marked."""
        path = os.path.join(self.tuning_dir, "index.html")
        with atomic_open(path, "--output_dir") as f:
            f.write(trials_table(rows, best, os.path.basename(os.path.abspath(self.output_dir))))
        return path

    def promote(self, best: dict, rows: list[dict], overwrite: bool) -> None:
        """Make the best trial's folder the final model: facts of the search in its contract and card, its
        train_config.yaml pointing at the final folder, checkpoints dropped, then moved in (m3cls.json last)."""
        folder = best["folder"]
        contract = read_contract(folder)
        settings = dict(contract.info.get("settings") or {}, output_dir=self.output_dir,
                        overwrite_output_dir=overwrite)
        contract = contract.with_info(settings=settings, tuning={
            "n_trials": len(rows), "best_trial": best["trial"], "best_params": best["params"],
            "completed": sum(r["state"] == "complete" for r in rows),
            "pruned": sum(r["state"] == "pruned" for r in rows),
            "failed": sum(r["state"] == "failed" for r in rows), "trials": f"tuning/{TRIALS_FILE}"})
        write_train_config(folder, settings)
        write_model_card(folder, contract, os.path.basename(os.path.abspath(self.output_dir)))
        write_contract(folder, contract)
        for name in os.listdir(folder):
            if name.startswith("checkpoint-"):
                shutil.rmtree(os.path.join(folder, name))
        for name in sorted(os.listdir(folder), key=lambda n: (n == CONTRACT_FILE, n.endswith(".safetensors"))):
            target = os.path.join(self.output_dir, name)
            if os.path.isdir(target):
                replace_folder(os.path.join(folder, name), target)
            else:
                os.replace(os.path.join(folder, name), target)
        shutil.rmtree(self.trials_root, ignore_errors=True)
        self.write_table(rows, best["trial"])


def trials_table(rows: list[dict], best: int | None, title: str) -> str:
    """A self-contained HTML page with the trials table (no scripts, no external files)."""
    params = sorted({k for r in rows for k in r["params"]})
    head = ["trial", "state", "macro-F1", "accuracy", *params, "seconds", "note"]
    body = []
    for r in rows:
        cells = [str(r["trial"]) + (" (best)" if r["trial"] == best else ""), r["state"], _num(r["macro_f1"]),
                 _num(r["accuracy"]), *(_num(r["params"].get(p)) for p in params), _num(r.get("seconds")),
                 r.get("error") or ""]
        mark = ' class="best"' if r["trial"] == best else ""
        body.append(f"<tr{mark}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    summary = f"{len(rows)} trials" + (f"; best: trial {best}" if best is not None else "; none completed")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>m3cls tune: {html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}tr.best{font-weight:bold;"
            "background:#eef8ee}</style></head><body>"
            f"<h1>m3cls tune: {html.escape(title)}</h1><p>{html.escape(summary)}; score: validation macro-F1 of "
            f"each trial's best checkpoint. Every row is also in {TRIALS_FILE}.</p><table id=\"trials\"><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(body)
            + "</table></body></html>\n")


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

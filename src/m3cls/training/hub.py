"""``--push_to_hub``: the final model folder, uploaded once after the staged final save.

transformers' Trainer would create the repository when it is constructed, upload from ``--output_dir`` at every
checkpoint, and overwrite the folder's README.md with its own card. m3cls takes ``push_to_hub`` out of the
Trainer's arguments instead, checks for a token and the Hub before training, and uploads the finished folder
(weights, tokenizer, config, ``m3cls.json``, ``README.md`` card, ``train_config.yaml``, report) in one commit.
``training_args.bin`` stays local: it is a pickle, and it holds ``--hub_token`` when one is given.

What is uploaded is a copy made for publishing (:func:`publishable_copy`): every absolute local path in its text
files (``m3cls.json``, the card, ``train_config.yaml``, the report) becomes its base name, and the inspection's
example texts (validation snippets) are left out of ``m3cls.json``. The local folder keeps both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Iterator

from ..errors import ConfigError, OutputError

logger = logging.getLogger(__name__)

#: not uploaded: checkpoints and staging leftovers (as the Trainer does), and the pickled TrainingArguments
IGNORE = ["checkpoint-*", "_*", "*.partial", ".m3cls-final.*", "training_args.bin"]
#: files whose text may name local paths: rewritten in the copy that is published
TEXT_FILES = (".json", ".md", ".yaml", ".yml", ".html", ".txt")


@dataclass(frozen=True)
class HubTarget:
    """Where ``--push_to_hub`` uploads: repository, token, visibility and branch."""

    repo_id: str
    token: str | None
    private: bool | None
    revision: str | None


def take_hub_target(values: dict) -> HubTarget | None:
    """The upload target when ``--push_to_hub`` is on; it is switched off in ``values`` so the Trainer never
    uploads during training. Fails before any training when no token is set or the Hub cannot be reached."""
    if not values.get("push_to_hub"):
        return None
    values["push_to_hub"] = False
    from huggingface_hub import get_token

    from .. import hub

    repo_id = values.get("hub_model_id") or os.path.basename(os.path.abspath(values["output_dir"]))
    token = values.get("hub_token") or get_token()
    if not token:
        raise ConfigError("--push_to_hub needs a Hugging Face token: run 'hf auth login', set HF_TOKEN, or pass "
                          "--hub_token")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or not hub.hub_reachable():
        raise ConfigError(f"--push_to_hub {repo_id}: the Hugging Face Hub cannot be reached from here (or "
                          f"HF_HUB_OFFLINE is set); train without it and upload the folder later")
    if values.get("hub_strategy") not in (None, "every_save"):
        logger.warning("--hub_strategy %s: m3cls uploads the final folder once, after training",
                       values["hub_strategy"])
    return HubTarget(repo_id, token, values.get("hub_private_repo"), values.get("hub_revision"))


def push_folder(folder: str, target: HubTarget) -> str:
    """Create the repository if needed and upload ``folder`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=target.token)
    try:
        repo = api.create_repo(target.repo_id, private=target.private, exist_ok=True)
        with publishable_copy(folder) as public:
            commit = api.upload_folder(repo_id=repo.repo_id, folder_path=public, revision=target.revision,
                                       commit_message="m3cls: fine-tuned model", ignore_patterns=IGNORE)
    except Exception as e:  # network, permission, quota: the model itself is saved
        detail = " ".join(str(e).split())[:200]
        raise OutputError(f"{folder}: the model is saved, but pushing it to {target.repo_id} failed ({detail}); "
                          f"upload it later with: hf upload {target.repo_id} {folder}") from None
    logger.info("pushed %s to %s", folder, getattr(commit, "commit_url", commit))
    return str(getattr(commit, "commit_url", commit))


@contextlib.contextmanager
def publishable_copy(folder: str) -> Iterator[str]:
    """A temporary copy of ``folder`` fit to publish: absolute local paths become base names, and the
    inspection's example texts are dropped from ``m3cls.json``. Large files are hard-linked, not copied."""
    paths = sorted(_local_paths(folder), key=len, reverse=True)
    with tempfile.TemporaryDirectory(prefix="m3cls-publish-") as public:
        for root, dirs, files in os.walk(folder):
            rel = os.path.relpath(root, folder)
            dirs[:] = [d for d in dirs if not any(fnmatch(d, p) for p in IGNORE)]
            os.makedirs(os.path.join(public, rel), exist_ok=True)
            for name in files:
                if any(fnmatch(name, p) for p in IGNORE):
                    continue
                src, dst = os.path.join(root, name), os.path.join(public, rel, name)
                if name.endswith(TEXT_FILES):
                    with open(src, encoding="utf-8", errors="surrogateescape") as f:
                        text = f.read()
                    if rel == "." and name == "m3cls.json":
                        text = _without_examples(text)
                    for path in paths:
                        text = text.replace(path, os.path.basename(path.rstrip("/\\")))
                        text = text.replace(json.dumps(path)[1:-1], os.path.basename(path.rstrip("/\\")))
                    with open(dst, "w", encoding="utf-8", errors="surrogateescape") as f:
                        f.write(text)
                else:
                    _link_or_copy(src, dst)
        yield public


def _local_paths(folder: str) -> set[str]:
    """Absolute paths of this machine that the folder's contract names (data files, base model, output)."""
    try:
        with open(os.path.join(folder, "m3cls.json"), encoding="utf-8") as f:
            contract = json.load(f)
    except (OSError, ValueError):
        contract = {}
    found = {os.path.abspath(folder)}

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and os.path.isabs(value) and len(value) > 1:
            found.add(value)

    walk(contract)
    return {p.rstrip("/\\") for p in found if len(p.rstrip("/\\")) > 1}


def _without_examples(text: str) -> str:
    """m3cls.json without the inspection's example texts (snippets of the validation data)."""
    try:
        contract = json.loads(text)
    except ValueError:
        return text

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "examples"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    if isinstance(contract, dict) and "inspection" in contract:
        contract["inspection"] = strip(contract["inspection"])
    return json.dumps(contract, indent=2, ensure_ascii=False) + "\n"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)

"""``--push_to_hub``: the final model folder, uploaded once after the staged final save.

transformers' Trainer would create the repository when it is constructed, upload from ``--output_dir`` at every
checkpoint, and overwrite the folder's README.md with its own card. m3cls takes ``push_to_hub`` out of the
Trainer's arguments instead, checks for a token and the Hub before training, and uploads the finished folder
(weights, tokenizer, config, ``m3cls.json``, ``README.md`` card, ``train_config.yaml``, report) in one commit.
``training_args.bin`` stays local: it is a pickle, and it holds ``--hub_token`` when one is given.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..errors import ConfigError, OutputError

logger = logging.getLogger(__name__)

#: not uploaded: checkpoints and staging leftovers (as the Trainer does), and the pickled TrainingArguments
IGNORE = ["checkpoint-*", "_*", "*.partial", ".m3cls-final.*", "training_args.bin"]


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
        commit = api.upload_folder(repo_id=repo.repo_id, folder_path=folder, revision=target.revision,
                                   commit_message="m3cls: fine-tuned model", ignore_patterns=IGNORE)
    except Exception as e:  # network, permission, quota: the model itself is saved
        detail = " ".join(str(e).split())[:200]
        raise OutputError(f"{folder}: the model is saved, but pushing it to {target.repo_id} failed ({detail}); "
                          f"upload it later with: hf upload {target.repo_id} {folder}") from None
    logger.info("pushed %s to %s", folder, getattr(commit, "commit_url", commit))
    return str(getattr(commit, "commit_url", commit))

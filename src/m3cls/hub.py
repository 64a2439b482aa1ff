"""Whether the Hugging Face Hub answers from here: one socket connect, no torch, no huggingface_hub.

The model loader and the dataset reader both ask before they would wait on a download that cannot happen.
"""

from __future__ import annotations

import os


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the Hub (``HF_ENDPOINT``, by default huggingface.co:443) opens in time."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False

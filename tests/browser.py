"""Headless Chromium for tests (Debian's chromium): render a local page and read its DOM."""

import os
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files"]


def need_chromium() -> str:
    """The browser's path; skip where there is none, unless CI demands it (M3CLS_REQUIRE_BROWSER=1)."""
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("M3CLS_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium is required here but not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed")


def run_chromium(args: list[str], profile: str, timeout: int = 90) -> str:
    result = subprocess.run([need_chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                            text=True, timeout=timeout)
    return result.stdout

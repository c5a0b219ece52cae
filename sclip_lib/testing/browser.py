"""Find a Chromium-family browser for the site checks (tests/test_book_site.py, the PDF and explorer checks).

Debian and Ubuntu name it ``chromium`` or ``chromium-browser``, Google's build ``google-chrome``; Playwright can
also manage its own. ``$SCLIP_CHROMIUM`` names one explicitly. Nothing here installs anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["CHROMIUM_ENV", "CHROMIUM_NAMES", "find_chromium", "missing_message"]

CHROMIUM_ENV = "SCLIP_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> Path | None:
    """The browser to drive: ``$SCLIP_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES` on PATH, else the one
    Playwright manages (``playwright install chromium``), else None."""
    explicit = os.environ.get(CHROMIUM_ENV, "").strip()
    if explicit:
        path = Path(explicit)
        return path if path.is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return _playwright_chromium()


def _playwright_chromium() -> Path | None:
    """The browser that `playwright install chromium` downloaded earlier, if any."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            managed = Path(p.chromium.executable_path)
        return managed if managed.is_file() else None
    except Exception:  # playwright missing, or no managed browser
        return None


def missing_message() -> str:
    return (
        f"no Chromium-family browser found (looked for ${CHROMIUM_ENV}, {', '.join(CHROMIUM_NAMES)} on PATH and a "
        "Playwright-managed chromium): install one (Debian: apt-get install chromium) or set "
        f"{CHROMIUM_ENV}=/path/to/chrome"
    )

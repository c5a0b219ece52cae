"""Where real benchmark samples for tests and the book's CI builds are: a folder named by the environment.

The installed package never guesses a path outside itself; the repository's test and build scripts set
``SCLIP_SAMPLES_DIR`` to their copy (``../shared/data/benchmark-samples``, never committed). Readers and
users don't need it: without it, tests skip with a reason and the local hub uses placeholder images.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SAMPLES_ENV", "samples_folder"]

SAMPLES_ENV = "SCLIP_SAMPLES_DIR"


def samples_folder() -> Path | None:
    """The folder ``$SCLIP_SAMPLES_DIR`` names, where it is set and exists; else None."""
    value = os.environ.get(SAMPLES_ENV, "").strip()
    if not value:
        return None
    folder = Path(value).expanduser()
    return folder if folder.is_dir() else None

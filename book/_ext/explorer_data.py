"""Sphinx extension: the explorers' data files (sclip_lib/book/explorers.py) beside their pages on the built site.

A chapter's kernel stages its explorers' float16 arrays in ``_build/explorer-data/<page folder>/`` (the
kernel learns that folder from the variables set here). When the HTML is written, this extension copies
them to ``<outdir>/<page folder>/explorer-data/``, where the page fetches them. Staging them outside the
output folder is what makes chapters taken from the execution cache (not run again), and the student
edition built from the same cache, still ship their explorers' files. Without these variables (a plain
notebook, Colab) the explorers inline their data instead.
"""

import os
import shutil
from pathlib import Path

STAGE_ENV = "SCLIP_BOOK_EXPLORER_STAGE"
SRCDIR_ENV = "SCLIP_BOOK_SOURCE_DIR"
FOLDER = "explorer-data"  # the folder name beside each page, as in sclip_lib.book.EXPLORER_FOLDER


def _stage(app) -> Path:
    return Path(app.srcdir) / "_build" / FOLDER


def _export_dirs(app):
    os.environ[STAGE_ENV] = str(_stage(app))
    os.environ[SRCDIR_ENV] = str(app.srcdir)


def _copy_to_site(app, exception):
    if exception is not None or app.builder.format != "html" or not _stage(app).is_dir():
        return
    for folder in _stage(app).rglob(FOLDER):
        target = Path(app.outdir) / folder.parent.relative_to(_stage(app)) / FOLDER
        shutil.copytree(folder, target, dirs_exist_ok=True)


def setup(app):
    app.connect("builder-inited", _export_dirs)
    app.connect("build-finished", _copy_to_site)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

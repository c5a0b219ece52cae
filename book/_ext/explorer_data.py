"""Sphinx extension: tells the chapters' kernels where the built site is, so explorers write their data there.

The explorers (sclip_lib/explorer.py) of a chapter write their float16 arrays next to the chapter's page,
into ``<outdir>/<page folder>/explorer-data/``, and the page fetches them from there. The kernels that
execute the chapters inherit these two variables; without them (a plain notebook, Colab) the explorers
inline their data instead.
"""

import os

OUTDIR_ENV = "SCLIP_BOOK_HTML_DIR"
SRCDIR_ENV = "SCLIP_BOOK_SOURCE_DIR"


def _export_dirs(app):
    os.environ[OUTDIR_ENV] = str(app.outdir)
    os.environ[SRCDIR_ENV] = str(app.srcdir)


def setup(app):
    app.connect("builder-inited", _export_dirs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

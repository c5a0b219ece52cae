"""Sphinx extension: the Colab launch button opens a chapter's Colab copy (notebooks/NN.ipynb), not its source.

The chapters' sources are MyST Markdown (book/NN.md), which Colab cannot open; sphinx-book-theme would link
the .md. Every URL here is derived from _config.yml's ``repository`` (url, branch), its one definition.
"""

from __future__ import annotations

from pathlib import Path

COLAB = "https://colab.research.google.com"


def colab_url(repository_url: str, branch: str, path: str) -> str:
    """Colab's address for a notebook at ``path`` in a GitHub repository."""
    slug = repository_url.rstrip("/").removeprefix("https://github.com/")
    return f"{COLAB}/github/{slug}/blob/{branch}/{path}"


def notebook_path(app, pagename: str) -> str | None:
    """notebooks/NN.ipynb (relative to the repository root) when the page has a Colab copy, else None."""
    copy = Path(app.srcdir) / "notebooks" / (Path(pagename).name + ".ipynb")
    return copy.relative_to(app.srcdir).as_posix() if copy.exists() else None


def _retarget_launch_button(app, pagename, templatename, context, doctree):
    path = notebook_path(app, pagename)
    if path is None:
        return
    options = app.config.html_theme_options or {}
    url = colab_url(options.get("repository_url", ""), options.get("repository_branch", "main"), path)
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                button["url"] = url


def setup(app):
    # priority 502: after sphinx-book-theme has added its launch buttons (501)
    app.connect("html-page-context", _retarget_launch_button, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

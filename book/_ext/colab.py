"""Sphinx extension: each chapter opens on Colab as its Colab copy (notebooks/NN.ipynb), not as its source.

- An "Open in Colab" badge under the chapter's title: the reading edition (solutions folded), and beside it a
  link to the student edition (notebooks/student/NN.ipynb, no solutions); the student edition of the site
  links only the student copy.
- The theme's Colab launch button retargeted: the chapters' sources are MyST Markdown (book/NN.md), which
  Colab cannot open, and sphinx-book-theme would link the .md.

Every URL here is derived from _config.yml's ``repository`` (url, branch), its one definition.
"""

from __future__ import annotations

import base64
from pathlib import Path

from docutils import nodes

BADGE = Path(__file__).resolve().parents[1] / "_static" / "colab-badge.svg"

COLAB = "https://colab.research.google.com"


def colab_url(repository_url: str, branch: str, path: str) -> str:
    """Colab's address for a notebook at ``path`` in a GitHub repository."""
    slug = repository_url.rstrip("/").removeprefix("https://github.com/")
    return f"{COLAB}/github/{slug}/blob/{branch}/{path}"


def notebook_path(app, pagename: str, edition_name: str = "reading") -> str | None:
    """notebooks/NN.ipynb (reading edition) or notebooks/student/NN.ipynb (student edition), relative to the
    repository root, when the page has a Colab copy, else None."""
    folder = "notebooks/student" if edition_name == "student" else "notebooks"
    copy = Path(app.srcdir) / folder / (Path(pagename).name + ".ipynb")
    return copy.relative_to(app.srcdir).as_posix() if copy.exists() else None


def _url(app, path: str | None) -> str | None:
    if path is None:
        return None
    options = app.config.html_theme_options or {}
    return colab_url(options.get("repository_url", ""), options.get("repository_branch", "main"), path)


def _page_colab_url(app, pagename: str) -> str | None:
    """Colab's address for the page's notebook: the reading edition's, or in the student edition of the site the
    student copy's (no solutions); None without one."""
    return _url(app, notebook_path(app, pagename, "student" if app.config.hide_solutions else "reading"))


def _add_badge(app, doctree):
    url = _page_colab_url(app, app.env.docname)
    title = next(iter(doctree.findall(nodes.title)), None)
    if url is None or title is None:
        return
    # inlined, so the badge needs no network and no path relative to the page (the single-page PDF build too)
    svg = base64.b64encode(BADGE.read_bytes()).decode("ascii")
    student = _url(app, notebook_path(app, app.env.docname, "student"))
    extra = (
        ""
        if app.config.hide_solutions or student is None
        else f' <a class="sclip-colab-student" href="{student}" target="_blank" rel="noopener">'
        "student edition on Colab (no solutions)</a>"
    )
    html = (
        f'<p class="sclip-colab-badge"><a href="{url}" target="_blank" rel="noopener">'
        f'<img src="data:image/svg+xml;base64,{svg}" alt="Open in Colab" width="117" height="20"></a>{extra}</p>'
    )
    title.parent.insert(title.parent.index(title) + 1, nodes.raw("", html, format="html"))


def _retarget_launch_button(app, pagename, templatename, context, doctree):
    url = _page_colab_url(app, pagename)
    for group in context.get("header_buttons", []):
        buttons = group.get("buttons", [])
        if url is None:  # no notebook to open there: drop the theme's Colab button (it would open the .md)
            buttons[:] = [b for b in buttons if b.get("text") != "Colab"]
        for button in buttons:
            if button.get("text") == "Colab":
                button["url"] = url


def setup(app):
    app.connect("doctree-read", _add_badge)
    # priority 502: after sphinx-book-theme has added its launch buttons (501)
    app.connect("html-page-context", _retarget_launch_button, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

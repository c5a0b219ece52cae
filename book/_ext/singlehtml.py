"""Sphinx extension: every node that renders in HTML renders in the single-page HTML the PDF is printed from.

myst-nb (hidden-code cells), sphinx-proof and sphinx-exercise register their nodes' visitors for the ``html``
builder only, so ``singlehtml`` (scripts/book_pdf.py) stops with "unknown node type"; this gives
``singlehtml`` the ``html`` visitors it lacks.
"""


def _share_html_visitors(app):
    handlers = app.registry.translation_handlers
    single = handlers.setdefault("singlehtml", {})
    for name, visitors in handlers.get("html", {}).items():
        single.setdefault(name, visitors)


def setup(app):
    app.connect("builder-inited", _share_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

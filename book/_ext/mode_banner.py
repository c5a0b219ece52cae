"""Sphinx extension: in smoke mode, an announcement bar on every page of the site (sphinx-book-theme)."""

import os


def _announce(app, config):
    if os.environ.get("SCLIP_BOOK_MODE", "real").strip().lower() != "smoke":
        return
    options = dict(config.html_theme_options or {})
    options["announcement"] = (
        '<span class="sclip-smoke-announcement">SMOKE MODE: this site was built with untrained weights '
        "and small images; its numbers, maps and masks are not meaningful.</span>"
    )
    config.html_theme_options = options


def setup(app):
    app.connect("config-inited", _announce)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

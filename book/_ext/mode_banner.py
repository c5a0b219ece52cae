"""Sphinx extension: the build's mode on every page (sphinx-book-theme): in smoke mode an announcement bar;
always a footer line saying the mode, the benchmark image counts and, where used, the local test hub."""

import os


def footer_text() -> str:
    """What the site's footer says about how its chapters were executed."""
    mode = os.environ.get("SCLIP_BOOK_MODE", "real").strip().lower() or "real"
    images = os.environ.get("SCLIP_BOOK_IMAGES", "").strip()
    counts = (
        f"{images} benchmark images per evaluation (SCLIP_BOOK_IMAGES={images}, a reduced CI setting)"
        if images
        else "each chapter's own benchmark image counts"
    )
    templates = os.environ.get("SCLIP_BOOK_TEMPLATES", "").strip()
    if templates:
        counts += f" and at most {templates} prompt templates per class (SCLIP_BOOK_TEMPLATES={templates})"
    hub = os.environ.get("SCLIP_BOOK_HUB", "").strip().lower() == "local"
    where = " against the local test hub (random weights, placeholder images)" if hub else ""
    return f"Executed in {mode} mode{where} with {counts}."


def _announce(app, config):
    options = dict(config.html_theme_options or {})
    footer = f'<p class="sclip-build-footer">{footer_text()}</p>'
    options["extra_footer"] = (options.get("extra_footer") or "") + footer
    if os.environ.get("SCLIP_BOOK_MODE", "real").strip().lower() == "smoke":
        options["announcement"] = (
            '<span class="sclip-smoke-announcement">SMOKE MODE: this site was built with untrained weights '
            "and small images; its numbers, maps and masks are not meaningful.</span>"
        )
    config.html_theme_options = options


def setup(app):
    app.connect("config-inited", _announce)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

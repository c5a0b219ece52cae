"""Sphinx extension: the student edition. ``SCLIP_BOOK_EDITION=student`` removes every solution.

sphinx-exercise's ``hide_solutions`` drops each ``solution`` block when the page is read, so no solution text
reaches the pages, the search index or the PDF. A solution's code is a code cell tagged ``solution`` (executed by
every build, so a broken solution fails it): its cell is removed too, output included. Any block with the class
``instructor-only`` is removed as well. Every page then says which edition it is.
"""

from __future__ import annotations

import os

from docutils import nodes

EDITION_ENV = "SCLIP_BOOK_EDITION"
EDITIONS = ("full", "student")
SOLUTION_CELL = "tag_solution"  # myst-nb's class for a code cell tagged `solution`


def edition() -> str:
    value = os.environ.get(EDITION_ENV, "full").strip().lower() or "full"
    if value not in EDITIONS:
        raise ValueError(f"{EDITION_ENV}={value!r}: use 'full' (solutions included) or 'student' (no solutions)")
    return value


def _configure(app, config):
    if edition() != "student":
        return
    config.hide_solutions = True
    # the page sources (and the executed notebooks the theme offers for download) still hold the solutions
    config.html_copy_source = False
    options = dict(config.html_theme_options or {})
    note = '<span class="sclip-student-announcement">STUDENT EDITION: the solutions are left out.</span>'
    options["announcement"] = note + (" " + options["announcement"] if options.get("announcement") else "")
    config.html_theme_options = options


def _remove_instructor_only(app, doctree):
    if not app.config.hide_solutions:
        return
    for node in list(doctree.findall(nodes.Element)):
        classes = node.get("classes", [])
        if ("instructor-only" in classes or SOLUTION_CELL in classes) and node.parent is not None:
            node.parent.remove(node)


def setup(app):
    app.connect("doctree-read", _remove_instructor_only)
    # after mode_banner's config-inited handler (priority 500), so both announcements show
    app.connect("config-inited", _configure, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

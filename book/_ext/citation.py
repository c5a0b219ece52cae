"""Sphinx extension: ``{bibtex-entry}`` prints a BibTeX entry, so the "How to cite" page keeps no copy of one.

- ``book``: the book and library, from CITATION.cff, with the repository URL from _config.yml.
- any other key: that entry of book/references.bib (e.g. ``wang2024sclip``, the SCLIP paper).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from docutils import nodes
from pybtex.database import BibliographyData, Entry, parse_file
from sphinx.util.docutils import SphinxDirective


def book_entry(citation: dict, repository_url: str) -> Entry:
    """CITATION.cff's fields as a BibTeX @misc entry."""
    authors = " and ".join(
        "{" + a["name"] + "}" if "name" in a else f"{a['family-names']}, {a['given-names']}"
        for a in citation["authors"]
    )
    fields = {
        "title": citation["title"],
        "author": authors,
        "note": f"Version {citation['version']}",
        "url": repository_url,
    }
    return Entry("misc", fields=fields)


class BibtexEntry(SphinxDirective):
    required_arguments = 1

    def run(self):
        key = self.arguments[0]
        root = Path(self.env.srcdir)
        if key == "book":
            citation = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
            url = (self.config.html_theme_options or {}).get("repository_url", "")
            entry, key = book_entry(citation, url), "sclipbook"
            self.env.note_dependency(str(root / "CITATION.cff"))
        else:
            bib = root / "book" / "references.bib"
            entry = parse_file(str(bib)).entries[key]
            self.env.note_dependency(str(bib))
        text = BibliographyData({key: entry}).to_string("bibtex").strip()
        block = nodes.literal_block(text, text)
        block["language"] = "bibtex"
        return [block]


def setup(app):
    app.add_directive("bibtex-entry", BibtexEntry)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

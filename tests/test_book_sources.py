"""The equation count of a chapter source (tests/book_sources.py), on Markdown with known answers."""

from __future__ import annotations

import json

import pytest

from tests.book_sources import count_equations, markdown_parts, page_source, source_math, toc_pages

CASES = [
    ("$a$ and $b = c$", 1 + 1),
    ("$$\nQ = X W_q\n$$ (eq-qkv)\n\nthen $$\nx\n$$", 2),
    ("`$a$` is code, and so is\n\n    $b$ indented", 0),
    ("costs \\$5 or \\$6", 0),
    ("\\begin{align}\na &= b\n\\end{align}", 1),
    ("{math}`a^2` and {cite}`x`", 1),
    ("```{math}\n:label: m1\na^2\n```", 1),
    (":::{admonition} Proposition\n:class: note\nLet $z_i$ and $r > 0$.\n:::", 2),
    ("````{note}\n```{math}\nx\n```\n$y$\n````", 2),
    ("```{code-cell} ipython3\nprint('$x$')\n```\n\n```python\ny = '$z$'\n```", 0),
]


@pytest.mark.parametrize("markdown, expected", CASES)
def test_count_equations(markdown, expected):
    assert count_equations(markdown) == expected


def test_notebook_and_myst_sources_give_the_same_count(tmp_path, monkeypatch):
    text = "# T\n\n$$\na\n$$ (eq-a)\n\nwith $b$."
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": [text]},
            {
                "cell_type": "code",
                "metadata": {},
                "source": ["s = '$not math$'"],
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.ipynb").write_text(json.dumps(nb))
    myst = f"---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n{text}\n\n```{{code-cell}} ipython3\ns = '$not math$'\n```\n"
    (tmp_path / "book" / "b.md").write_text(myst)
    monkeypatch.setattr("tests.book_sources.ROOT", tmp_path)
    assert markdown_parts(page_source("book/a")) == [text]
    assert source_math("book/a") == source_math("book/b") == (2, ["eq-a"])


def test_every_toc_page_has_a_source():
    pages = toc_pages()
    assert "book/04_csa" in pages
    for page in pages:
        assert page_source(page).exists()
    count, labels = source_math("book/04_csa")
    assert count > 0 and labels, "the derivation chapter has numbered equations"

"""The Colab copies (scripts/notebooks.py, scripts/colab_markdown.py): plain Markdown that Jupyter renders, both
editions, no MyST left, and no solution in the student edition."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import colab_markdown as cm  # noqa: E402

import notebooks  # noqa: E402

sys.path.pop(0)

# what Jupyter shows raw: a role, a directive fence, a labelled display equation, a MyST target
MYST = re.compile(r"\{[\w:+-]+\}`|^[ \t>]*(:{3,}|`{3,})\{|^\$\$\s*\(|^\([\w:.-]+\)=\s*$", re.M)
SITE = "https://example.org/book-site/"


def _index() -> cm.Index:
    return cm.Index.of_book(ROOT / "book", site=SITE)


def _convert(text, with_solutions=True):
    return cm.convert(text, "04_csa", _index(), with_solutions)


def _markdown(nb_path: Path) -> list[str]:
    cells = json.loads(nb_path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _all_copies() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "student").glob("*.ipynb"))


def test_no_myst_left_in_any_colab_copy():
    copies = _all_copies()
    assert len(copies) == 2 * len(notebooks.chapters())
    for path in copies:
        for text in _markdown(path):
            found = MYST.search(text)
            assert not found, f"{path.relative_to(ROOT)}: MyST syntax left: {found.group(0)!r} in\n{text[:300]}"


def test_the_check_pattern_sees_myst():
    for raw in ["a {glue:}`x` b", "{term}`CSA`", ":::{admonition} T", "> ```{code-cell}", "$$ (eq-a)", "(label)="]:
        assert MYST.search(raw), raw
    assert not MYST.search("plain $x$ and `code` and [link](u#a)")


def test_glued_values_are_printed_under_the_paragraph_that_cites_them():
    parts = _convert("First {glue:}`a` here.\n\nNo value.\n\nThen {glue:text}`b:.1%` and {glue:}`a`.")
    assert [k for k, _ in parts] == ["markdown", "code", "markdown", "code"]
    assert parts[0][1].strip() == "First `a` here." and parts[1][1].startswith('book.show_glued("a")')
    assert "No value." in parts[2][1] and parts[3][1].startswith('book.show_glued("b:.1%", "a")')


def test_show_glued_prints_values_and_says_what_is_missing(capsys):
    from sclip_lib import book

    book.glue("colab_test_value", 0.4567)
    book.show_glued("colab_test_value:.1%", "never_glued")
    out = capsys.readouterr().out
    assert "45.7%" in out and "never_glued" in out and "not computed yet" in out


def test_references_terms_citations_and_equations_become_links():
    text = _convert(
        "See {doc}`02_clip`, {term}`CSA`, {term}`tokens <patch token>`, {cite}`wang2024sclip`, "
        "{prf:ref}`prop-correlative`, {eq}`eq-csa` and {math}`a^2`."
    )[0][1]
    assert f"]({SITE}book/02_clip.html)" in text
    assert f"[CSA]({SITE}book/glossary.html#term-CSA)" in text
    assert f"[tokens]({SITE}book/glossary.html#term-patch-token)" in text
    assert re.search(r"\(\[Wang et al\. 2024\]\(" + re.escape(SITE) + r"book/references\.html\)\)", text), text
    assert f"({SITE}book/04_csa.html#prop-correlative)" in text
    assert re.search(r"\[\(\d\)\]\(" + re.escape(SITE) + r"book/04_csa\.html#equation-eq-csa\)", text), text
    assert "$a^2$" in text


def test_labelled_equation_keeps_its_number_as_a_tag():
    index = _index()
    number = index.equations["eq-csa"][1]
    text = cm.convert("$$\nA = B\n$$ (eq-csa)", "04_csa", index)[0][1]
    assert text == f"$$\nA = B\n\\tag{{{number}}}\n$$"


def test_directives_become_quotes_details_or_nothing():
    src = (
        ":::{admonition} Note {term}`CSA`\n:class: tip\nBody $x$.\n:::\n\n"
        ":::{exercise}\n:label: ex-q\nDo it.\n:::\n\n:::{solution} ex-q\n:class: dropdown\nThe answer.\n:::\n\n"
        "::::{prf:proposition} Title\n:label: p\nClaim.\n:::{note}\nInner.\n:::\n::::"
    )
    reading = "\n".join(t for _, t in _convert(src))
    assert "> **Note [CSA](" in reading and "> Body $x$." in reading
    assert "> **Exercise**" in reading and "<details>" in reading and "The answer." in reading
    assert "> **Proposition (Title).**" in reading and "> > **Note**" in reading
    student = "\n".join(t for _, t in _convert(src, with_solutions=False))
    assert "The answer." not in student and "<details>" not in student and "Do it." in student
    assert not MYST.search(reading) and not MYST.search(student)


def test_literalinclude_becomes_a_source_cell():
    parts = _convert("Before.\n\n```{literalinclude} ../sclip_lib/attention.py\n:pyobject: sclip\n```\n\nAfter.")
    assert [(k, t.strip()) for k, t in parts] == [
        ("markdown", "Before."),
        ("code", 'book.show_source("sclip_lib.attention.sclip")'),
        ("markdown", "After."),
    ]


@pytest.mark.parametrize(
    "src",
    [
        "{abbr}`A (b)`",
        "```{figure} x.png\n```",
        "{ref}`no-such-label`",
        "{term}`not a term`",
        "{cite}`nobody2099`",
        ":::{note}\nnever closed",
    ],
)
def test_constructs_without_a_colab_form_are_errors(src):
    with pytest.raises(cm.ConversionError):
        _convert(src)


def test_student_edition_holds_no_solution():
    for md in notebooks.chapters():
        student = json.loads(notebooks.student_copy(md).read_text())["cells"]
        reading = json.loads(notebooks.paired(md).read_text())["cells"]
        assert not any("<summary><b>Solution" in "".join(c["source"]) for c in student), md.name
        assert not any("@title Solution" in "".join(c["source"]) for c in student), md.name
        folded = sum("@title Solution" in "".join(c["source"]) for c in reading)
        tagged = sum("solution" in c.metadata.get("tags", []) for c in jupytext.read(md).cells)
        assert folded == tagged, f"{md.name}: {tagged} solution cells in the source, {folded} folded in the copy"
        for c in reading:
            if "@title Solution" in "".join(c["source"]):
                assert c["metadata"].get("cellView") == "form"


def test_copies_are_up_to_date():
    assert notebooks.problems() == []


def test_colab_check_installs_from_the_local_repository():
    """scripts/colab_check.py runs the committed copy with only its set-up cell's URL pointed here."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import colab_check
    finally:
        sys.path.pop(0)
    nb = colab_check.colab_copy("student/04_csa", f"git+file://{ROOT}@HEAD", "HEAD")
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    assert f'"sclip_lib[book] @ git+file://{ROOT}@HEAD"' in setup and notebooks.repository_url() not in setup
    committed = json.loads(
        subprocess.run(
            ["git", "show", "HEAD:notebooks/student/04_csa.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )["cells"]
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, committed)) if a.source != "".join(b["source"])]
    assert len(nb.cells) == len(committed) and len(changed) == 1 and "pip" in nb.cells[changed[0]].source
    assert colab_check.locked("torch").startswith("torch==")

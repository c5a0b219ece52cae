"""The chapters' Colab copies, generated from their sources: book/*.md (MyST Markdown notebooks) ->

- notebooks/NN.ipynb, the reading edition: every solution is there, folded (a <details> block for its text, a
  Colab form cell, code hidden until opened, for its code);
- notebooks/student/NN.ipynb, the student edition: no solution at all.

Colab renders plain Markdown, so every MyST construct becomes something it shows (scripts/colab_markdown.py):
glued values a small code cell that prints them, cross references and glossary terms links to the site, citations
author-year links to the references page, admonitions, propositions and exercises quoted blocks, equations plain
`$$` LaTeX, `literalinclude` a cell that shows the installed library's source.

The copies are committed (Colab opens a notebook from a GitHub URL: the chapters' badges point at them on the
repository's branch), without outputs; edit the sources, never the copies. Each chapter's first code cell is the
Colab set-up cell, defined once in notebooks/colab_setup.py with the repository URL from _config.yml.

    python scripts/notebooks.py          # write the set-up cells into the sources, then both editions
    python scripts/notebooks.py --check  # exit 1 if a copy differs from what the line above writes
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import colab_markdown  # noqa: E402  (scripts/, beside this file)

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
STUDENT = "student"  # notebooks/student/: the student edition
SETUP_TEMPLATE = NOTEBOOKS / "colab_setup.py"
EDITIONS = ("reading", "student")
SOLUTION_TAG = "solution"  # a code cell of a solution: folded in the reading edition, left out of the student one


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def repository_url() -> str:
    """The one place the repository URL is written: _config.yml's ``repository.url``."""
    return config()["repository"]["url"].rstrip("/")


def site_url() -> str:
    """The published site: _config.yml's ``html.baseurl`` when set, else the GitHub Pages address of the repository."""
    base = (config().get("html") or {}).get("baseurl") or ""
    if base:
        return base.rstrip("/") + "/"
    owner, repo = repository_url().removeprefix("https://github.com/").split("/")[:2]
    return f"https://{owner}.github.io/{repo}/"


def setup_cell() -> str:
    return SETUP_TEMPLATE.read_text(encoding="utf-8").strip("\n").replace("{repository_url}", repository_url())


def chapters() -> list[Path]:
    """The MyST notebooks in book/ (Markdown pages without a jupytext header, like references.md, are not chapters)."""
    return [p for p in sorted(BOOK.glob("*.md")) if p.read_text(encoding="utf-8").startswith("---\njupytext:")]


def paired(md: Path) -> Path:
    """The reading edition's Colab copy of a chapter."""
    return NOTEBOOKS / (md.stem + ".ipynb")


def student_copy(md: Path) -> Path:
    return NOTEBOOKS / STUDENT / (md.stem + ".ipynb")


def copies(md: Path) -> dict[str, Path]:
    return {"reading": paired(md), "student": student_copy(md)}


def _intro(md: Path, title: str, edition: str, site: str) -> str:
    page = f"{site}book/{md.stem}.html"
    other = (
        "The student edition (no solutions) is `notebooks/student/"
        if edition == "reading"
        else "The reading edition (with solutions) is `notebooks/"
    )
    solutions = (
        "Solutions are folded: open a *Solution* to read it; its code cell is hidden until you double-click it."
        if edition == "reading"
        else "**Student edition**: the solutions are left out."
    )
    return (
        f"*Colab copy of the chapter [{title}]({page}), generated from its source `book/{md.name}`.* "
        f"Cross references and glossary terms link to the book's site; the numbers the text cites are printed "
        f"under the paragraph that cites them once the cells above have run. {solutions} "
        f"{other}{md.stem}.ipynb`."
    )


def convert(md: Path, edition: str, index: colab_markdown.Index | None = None) -> nbformat.NotebookNode:
    """The Colab copy of one chapter in one edition."""
    if edition not in EDITIONS:
        raise ValueError(f"edition {edition!r}: use one of {EDITIONS}")
    index = index or colab_markdown.Index.of_book(BOOK, ROOT / "_toc.yml", site_url())
    source = jupytext.read(md)
    cells: list = []
    title = index.titles.get(md.stem, md.stem)
    for cell in source.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            for kind, text in colab_markdown.convert(cell.source, md.stem, index, with_solutions=edition == "reading"):
                if kind == "markdown" and text.strip():
                    cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))
                elif kind == "code":
                    cells.append(nbformat.v4.new_code_cell(text))
        elif cell.cell_type == "code":
            if SOLUTION_TAG in tags:
                if edition == "student":
                    continue
                code = nbformat.v4.new_code_cell("# @title Solution: double-click to show the code\n" + cell.source)
                code.metadata["cellView"] = "form"
                cells.append(code)
            else:
                cells.append(nbformat.v4.new_code_cell(cell.source))
        else:
            cells.append(nbformat.v4.new_raw_cell(cell.source))
    first_heading = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("# "))
    cells.insert(first_heading + 1, nbformat.v4.new_markdown_cell(_intro(md, title, edition, index.site)))
    for i, cell in enumerate(cells):  # stable ids: regenerating an unchanged chapter changes nothing
        cell["id"] = f"{md.stem.replace('_', '-')}-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "toc_visible": True},
        "accelerator": "GPU",
    }
    return nb


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def problems() -> list[str]:
    """Everything that makes the committed copies differ from what `python scripts/notebooks.py` writes."""
    found, setup = [], setup_cell()
    sources = chapters()
    index = colab_markdown.Index.of_book(BOOK, ROOT / "_toc.yml", site_url())
    for md in sources:
        nb = jupytext.read(md)
        if "formats" in nb.metadata.get("jupytext", {}):
            found.append(
                f"{md.name}: its header pairs it with a notebook (jupytext `formats:`); remove that line, "
                "the Colab copies are generated from it"
            )
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or code[0].source != setup:
            found.append(f"{md.name}: the first code cell is not the set-up cell of {SETUP_TEMPLATE.name}")
        for edition, path in copies(md).items():
            if not path.exists():
                found.append(f"{path.relative_to(ROOT)} is missing")
                continue
            try:
                expected = render(convert(md, edition, index))
            except colab_markdown.ConversionError as error:
                found.append(f"{md.name}: {error}")
                break
            if path.read_text(encoding="utf-8") != expected:
                found.append(f"{path.relative_to(ROOT)} differs from what {md.relative_to(ROOT)} gives")
    stems = {p.stem for p in sources}
    for folder in (NOTEBOOKS, NOTEBOOKS / STUDENT):
        orphans = sorted(p.relative_to(ROOT).as_posix() for p in folder.glob("*.ipynb") if p.stem not in stems)
        found += [f"{name} has no source book/{Path(name).stem}.md" for name in orphans]
    clashes = sorted(p.name for p in BOOK.glob("*.ipynb"))
    found += [f"book/{name}: notebooks live in notebooks/, not beside their source" for name in clashes]
    return found


def write() -> None:
    """Put the one set-up cell into every chapter's source, then write both editions of every copy."""
    setup = setup_cell()
    for md in chapters():
        nb = jupytext.read(md)
        first = next(c for c in nb.cells if c.cell_type == "code")
        if first.source != setup:
            first.source = setup
            jupytext.write(nb, md, fmt="md:myst")
    index = colab_markdown.Index.of_book(BOOK, ROOT / "_toc.yml", site_url())
    (NOTEBOOKS / STUDENT).mkdir(exist_ok=True)
    for md in chapters():
        for edition, path in copies(md).items():
            text = render(convert(md, edition, index))
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                tmp = path.with_suffix(".ipynb.tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        write()
    found = problems()
    if found:
        print("Colab copies out of date (run `make notebooks`):\n  " + "\n  ".join(found))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

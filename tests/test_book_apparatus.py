"""The book's course apparatus without building it: the one repository URL, Colab links, editions, citation, PDF check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "scripts"))
import book_pdf  # noqa: E402
import citation  # noqa: E402
import colab  # noqa: E402
import edition  # noqa: E402
import notebooks  # noqa: E402

sys.path[:2] = []

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
URL = CONFIG["repository"]["url"].rstrip("/")


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def test_repository_url_is_written_once():
    """_config.yml holds the URL; elsewhere only the chapters' set-up cells, which the sync check derives from it."""
    derived = {md for md in notebooks.chapters()} | {c for md in notebooks.chapters() for c in notebooks.copies(md).values()}
    holders = []
    for path in _tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if URL in text and path not in derived:
            holders.append(path.relative_to(ROOT).as_posix())
    assert holders == ["_config.yml"], holders
    assert URL in notebooks.setup_cell() and "{repository_url}" in notebooks.SETUP_TEMPLATE.read_text()


def test_colab_url_points_at_the_paired_notebook():
    assert colab.colab_url("https://github.com/me/fork/", "dev", "notebooks/04_csa.ipynb") == (
        "https://colab.research.google.com/github/me/fork/blob/dev/notebooks/04_csa.ipynb"
    )


def test_edition_rejects_typos(monkeypatch):
    monkeypatch.delenv(edition.EDITION_ENV, raising=False)
    assert edition.edition() == "full"
    monkeypatch.setenv(edition.EDITION_ENV, "Student")
    assert edition.edition() == "student"
    monkeypatch.setenv(edition.EDITION_ENV, "students")
    with pytest.raises(ValueError, match="full.*student"):
        edition.edition()


def test_only_the_exercises_chapter_holds_solutions():
    """The student edition drops the Colab link of exactly the chapters whose notebooks hold solutions."""
    holding = [md.stem for md in notebooks.chapters() if edition.has_solutions(md.read_text())]
    assert holding == ["09_exercises"]


def test_citation_file_and_its_bibtex():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "license"):
        assert key in cff, key
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{cff["version"]}"' in pyproject  # the citation names the library's version
    entry = citation.book_entry(cff, URL)
    assert entry.type == "misc" and entry.fields["url"] == URL and cff["version"] in entry.fields["note"]
    assert entry.fields["author"] == "{The SCLIP book authors}"  # a group name, kept whole by BibTeX
    sclip = next(r for r in cff["references"] if "SCLIP" in r["title"])
    assert [a["family-names"] for a in sclip["authors"]] == ["Wang", "Mei", "Yuille"] and sclip["year"] == 2024


def test_licence_files_and_statements():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    content = (ROOT / "LICENSE-CONTENT").read_text()
    assert "Creative Commons Attribution 4.0 International" in content and "Section 1 – Definitions" in content
    readme = (ROOT / "README.md").read_text()
    assert "CC BY 4.0" in readme and "MIT" in readme and "Cityscapes" in readme
    footer = CONFIG["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer
    assert "redistribution" in (ROOT / "book" / "licences.md").read_text()


def test_toc_has_the_course_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    for page in ("book/instructors", "book/glossary", "book/cite", "book/licences"):
        assert page in files and (ROOT / f"{page}.md").exists(), page


def test_pdf_check_finds_missing_chapters_and_blank_pages(tmp_path):
    """The PDF check fails on a PDF without the chapters' text whose pages are blank, and passes on ink."""
    from PIL import Image, ImageDraw

    if not (book_pdf.shutil.which("pdftoppm") and book_pdf.shutil.which("pdftotext")):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed: make book installs them")
    blank = tmp_path / "blank.pdf"
    pages = [Image.new("RGB", (200, 280), "white") for _ in range(3)]
    pages[0].save(blank, save_all=True, append_images=pages[1:])
    found = book_pdf.problems(blank, ["Preface"])
    assert "chapter 'Preface' is not in the PDF's text" in found
    assert sum("renders blank" in f for f in found) == 3
    inked = tmp_path / "inked.pdf"
    for page in pages:
        ImageDraw.Draw(page).rectangle([20, 20, 180, 120], fill="black")
    pages[0].save(inked, save_all=True, append_images=pages[1:])
    assert not any("blank" in f for f in book_pdf.problems(inked, []))
    assert book_pdf.problems(tmp_path / "none.pdf", []) == [f"{tmp_path / 'none.pdf'} does not exist"]


def test_chapter_titles_for_the_pdf_check():
    titles = book_pdf.chapter_titles()
    assert titles[0] == "Preface" and "Exercises" in titles and "Glossary" in titles and len(titles) >= 13

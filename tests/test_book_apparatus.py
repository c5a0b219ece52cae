"""The book's course apparatus without building it: the one repository URL, Colab links, editions, citation, PDF check."""

from __future__ import annotations

import re
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
    derived = {md for md in notebooks.chapters()} | {
        c for md in notebooks.chapters() for c in notebooks.copies(md).values()
    }
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


EXERCISE = re.compile(r"^:::\{exercise\}\s*(?P<title>[^\n]*)\n:label:\s*(?P<label>\S+)", re.M)


def test_chapters_2_to_8b_end_with_three_graded_exercises():
    """Every chapter 2-8b ends with "## Exercises": at least three, marked by difficulty; every exercise with a
    checker has a starter cell (grade.check) and a solution cell tagged `solution` that confirms it."""
    from sclip_lib.book import grade

    chapters = [md for md in notebooks.chapters() if "02_clip" <= md.stem < "09"]
    assert [md.stem for md in chapters] == [
        "02_clip",
        "03_clip_fails",
        "04_csa",
        "05_implementation",
        "06_demo",
        "07_evaluation",
        "08_family",
        "08b_after_sclip",
    ]
    used = set()
    for md in chapters:
        text = md.read_text()
        headings = re.findall(r"^## (.+)$", text, re.M)
        assert headings[-1] == "Exercises", f"{md.name}: the last section is {headings[-1]!r}, not Exercises"
        section = text[text.index("\n## Exercises\n") :]
        exercises = EXERCISE.findall(section)
        assert len(exercises) >= 3, f"{md.name}: {len(exercises)} exercises"
        for title, label in exercises:
            assert re.match(r"^★{1,3} ", title), f"{md.name}: {label} is not marked by difficulty (★, ★★, ★★★)"
            assert f":::{{solution}} {label}" in section, f"{md.name}: {label} has no solution"
            if label in grade.CHECKERS:
                used.add(label)
                assert f'grade.check("{label}"' in section and f'grade.confirm("{label}"' in section, label
        assert section.count(":tags: [solution") >= 3, f"{md.name}: solutions must be executed cells"
    assert used == set(grade.CHECKERS), f"checkers no chapter uses: {set(grade.CHECKERS) - used}"


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

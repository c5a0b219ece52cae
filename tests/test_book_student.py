"""The student edition (`make book-student`) holds no solution text; the full edition holds all of it.

Runs after the builds (scripts/build_book.py calls it); skipped with a reason when a build is missing.
The solution texts are read from the chapters' sources (every chapter's exercises, and chapter 9's), so the
check follows the exercises as they change; the solutions' code cells (tagged `solution`) must be in the full edition
and nowhere in the student edition.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "_build" / "html"
STUDENT = ROOT / "_build" / "student" / "_build" / "html"
SOURCES = sorted((ROOT / "book").glob("0*.md"))
SOLUTION = re.compile(r"^:::\{solution\}[^\n]*\n(?::[^\n]*\n)*(.*?)^:::$", re.S | re.M)


def solution_phrases() -> list[str]:
    """From each solution, its longest run of plain words: markup, maths and quotes change in HTML, words do not."""
    phrases = []
    bodies = [b for source in SOURCES for b in SOLUTION.findall(source.read_text(encoding="utf-8"))]
    for body in bodies:
        prose = re.sub(r"```.*?```", " ", body, flags=re.S)  # code blocks are highlighted token by token
        runs = [r.strip(" ,.;:") for line in prose.splitlines() for r in re.split(r"[^A-Za-z0-9 ,.;:]", line)]
        phrases.append(max(runs, key=lambda r: len(r.split())))
    return phrases


def _site_text(root: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix
        in {
            ".html",
            ".js",
            ".txt",
            ".md",
            ".ipynb",
            ".json",
        }
    )


def test_every_solution_has_a_phrase_to_look_for():
    phrases = solution_phrases()
    assert len(phrases) >= 7 + 3 * 8 and all(len(p.split()) >= 5 for p in phrases), phrases


def test_full_edition_has_every_solution():
    if not (FULL / "book" / "09_exercises.html").exists():
        pytest.skip("no full build: run `make book`")
    text = "\n".join((FULL / "book" / f"{s.stem}.html").read_text(encoding="utf-8") for s in SOURCES)
    missing = [p for p in solution_phrases() if p not in text]
    assert text.count("tag_solution") >= 8, "the solutions' code cells are missing from the full edition"
    assert not missing, f"solution text not found in the full edition (the phrase extraction is broken): {missing}"


def test_student_edition_has_no_solution_text():
    if not (STUDENT / "book" / "09_exercises.html").exists():
        pytest.skip("no student build: run `make book-student`")
    page = (STUDENT / "book" / "09_exercises.html").read_text(encoding="utf-8")
    assert page.count('class="exercise') >= 7, "the exercises themselves must stay"
    assert 'class="solution' not in page
    everything = _site_text(STUDENT)
    leaked = [p for p in solution_phrases() if p in everything]
    assert not leaked, f"solution text in the student edition: {leaked}"
    assert "STUDENT EDITION" in page
    assert "tag_solution" not in everything, "a solution's code cell is in the student edition"
    colab = re.findall(r'href="(https://colab\.research\.google\.com[^"]*)"', everything)
    assert colab and all("/notebooks/student/" in url for url in colab), (
        "the student edition links a copy with solutions"
    )


def test_student_edition_leaves_out_the_instructor_only_notes():
    page = STUDENT / "book" / "instructors.html"
    if not page.exists():
        pytest.skip("no student build: run `make book-student`")
    text = page.read_text(encoding="utf-8")
    assert "Lab plan 1" in text and "Marking suggestions" not in text and "Mistakes to watch for" not in text
    full = FULL / "book" / "instructors.html"
    if full.exists():
        assert "Marking suggestions" in full.read_text(encoding="utf-8")


@pytest.mark.parametrize("edition", [FULL, STUDENT], ids=["full", "student"])
def test_both_editions_ship_every_file_their_explorers_load(edition):
    """The student edition comes from the execution cache (no kernel runs): its explorers' files must be there
    too (book/_ext/explorer_data.py copies what the chapters staged)."""
    import json

    from sclip_lib import book

    pages = [edition / "book" / f"{chapter}.html" for chapter in book.EXPLORERS]
    if not all(p.exists() for p in pages):
        pytest.skip(f"no build at {edition}: run `make book`")
    for page in pages:
        configs = re.findall(
            r'<script[^>]*id="[^"]*-config"[^>]*>(.*?)</script>', page.read_text(encoding="utf-8"), re.S
        )
        urls = [s["url"] for c in configs for s in json.loads(c)["sources"].values() if "url" in s]
        assert urls, f"{page.name}: no explorer loads files"
        missing = [u for u in urls if not (page.parent / u).is_file()]
        assert not missing, f"{page.name}: explorer files missing from the site: {missing}"

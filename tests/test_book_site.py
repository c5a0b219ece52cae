"""The built site in headless Chromium: figures render, no traceback in any output, the smoke banner in smoke mode
(and on no page in real mode), the footer stating the mode and image counts.

Runs after `make book` (scripts/build_book.py calls it); skipped with a reason when there is no built site,
no Chromium or no playwright. Saves one screenshot per chapter under _build/screenshots/ for review.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
CHAPTERS = [
    "01_preface", "02_clip", "03_clip_fails", "04_csa", "05_implementation",
    "06_demo", "07_evaluation", "08_family", "09_exercises",
]
# images may be lazy: load them all now and wait until each has loaded or failed
LOAD_ALL_IMAGES = """async () => {
  const imgs = [...document.querySelectorAll('img')];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = r; i.onerror = r; })));
}"""
# chapters whose pages must show at least one executed figure
WITH_FIGURES = {"02_clip", "03_clip_fails", "04_csa", "05_implementation", "06_demo", "07_evaluation", "08_family"}


def _mode() -> str:
    path = ROOT / "_build" / "book-mode.txt"
    return path.read_text().strip() if path.exists() else "unknown"


def _check_mode_marks(page, chapter: str) -> None:
    """Smoke pages carry the smoke banner; real pages none; every page's footer states the image counts."""
    body = page.inner_text("body")
    if _mode() == "smoke":
        assert page.locator(".sclip-smoke-banner").count() > 0, f"{chapter}: smoke banner missing from the page"
        assert "SMOKE MODE" in body
    elif _mode() == "real":
        assert page.locator(".sclip-smoke-banner, .sclip-smoke-announcement").count() == 0, f"{chapter}: smoke banner"
        assert "SMOKE MODE" not in body, f"{chapter}: a real-mode page says SMOKE MODE"
    footer = page.inner_text(".sclip-build-footer")
    images = (ROOT / "_build" / "book-images.txt").read_text().strip() if (ROOT / "_build" / "book-images.txt").exists() else ""
    assert f"in {_mode()} mode" in footer and (f"SCLIP_BOOK_IMAGES={images}" if images else "own benchmark image counts") in footer


@pytest.fixture(scope="module")
def site():
    if not (HTML / "book" / "01_preface.html").exists():
        pytest.skip(f"no built book at {HTML}: run `make book` first")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (make book installs it when run as root)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser, f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            browser.close()
            server.shutdown()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(site, chapter):
    browser, base = site
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(f"{base}/book/{chapter}.html", wait_until="load")
        page.evaluate(LOAD_ALL_IMAGES)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{chapter}.png"), full_page=False)

        outputs = page.eval_on_selector_all(".cell_output", "els => els.map(e => e.innerText)")
        bad = [o[:300] for o in outputs if "Traceback" in o]
        assert not bad, f"{chapter}: a cell output holds a traceback:\n{bad[0]}"
        assert page.locator(".cell_output .traceback, .cell_output .output.error").count() == 0, chapter

        images = page.eval_on_selector_all(
            "article img", "els => els.map(e => ({src: e.getAttribute('src'), ok: e.complete && e.naturalWidth > 0}))"
        )
        broken = [i["src"] for i in images if not i["ok"]]
        assert not broken, f"{chapter}: images that did not render: {broken}"
        if chapter in WITH_FIGURES:
            figures = page.eval_on_selector_all(".cell_output img", "els => els.filter(e => e.naturalWidth > 0).length")
            assert figures > 0, f"{chapter}: no rendered figure in any cell output"

        _check_mode_marks(page, chapter)
    finally:
        page.close()


def test_references_page(site):
    browser, base = site
    page = browser.new_page()
    try:
        page.goto(f"{base}/book/references.html", wait_until="load")
        text = page.inner_text("body")
        assert "Radford" in text and "Wang" in text  # CLIP and SCLIP are listed
        if _mode() == "smoke":
            assert "SMOKE MODE" in text, "the smoke announcement bar is missing"
    finally:
        page.close()


# The course apparatus: pages without executed code, and what each must show.
APPARATUS = {
    "instructors": "Lab plan 1",
    "glossary": "correlative self-attention",
    "cite": "@inproceedings{wang2024sclip",
    "licences": "forbids redistribution",
}


@contextlib.contextmanager
def opened(site, name: str):
    """The built page book/NAME.html in a fresh browser tab."""
    browser, base = site
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(f"{base}/book/{name}.html", wait_until="load")
        yield page
    finally:
        page.close()


@pytest.mark.parametrize("name", sorted(APPARATUS))
def test_apparatus_page(site, name):
    with opened(site, name) as page:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
        assert APPARATUS[name] in page.inner_text("article"), name
        assert "CC BY 4.0" in page.inner_text(".bd-footer-content"), "the licence is missing from the footer"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_opens_on_colab(site, chapter):
    """A badge under the title and the launch button both open the chapter's paired notebook on Colab."""
    with opened(site, chapter) as page:
        badge = page.locator("article .sclip-colab-badge a")
        assert badge.count() == 1, f"{chapter}: no Colab badge"
        href = badge.get_attribute("href")
        assert href.startswith("https://colab.research.google.com/github/") and href.endswith(f"/notebooks/{chapter}.ipynb")
        assert page.locator("article .sclip-colab-badge img").evaluate("e => e.complete && e.naturalWidth > 0")
        launch = page.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
        assert set(launch) == {href}, f"{chapter}: Colab links disagree: {launch}"


def test_numbered_exercises_solutions_and_proposition(site):
    with opened(site, "09_exercises") as page:
        titles = page.eval_on_selector_all(".exercise .admonition-title", "els => els.map(e => e.innerText)")
        assert [t.split()[:2] for t in titles] == [["Exercise", str(i)] for i in range(1, 8)], titles
        assert page.locator(".solution").count() == 7
    with opened(site, "04_csa") as page:
        assert "Proposition 1" in page.inner_text(".proof.proposition")
        assert page.locator("div.proof").count() >= 2  # the proposition and its proof
    with opened(site, "02_clip") as page:
        assert page.locator("a.reference.internal[href*='glossary.html#term-']").count() > 0, "no glossary link"

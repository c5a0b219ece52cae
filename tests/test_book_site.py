"""The built site in headless Chromium: figures render, no traceback in any output, the smoke banner in smoke mode.

Runs after `make book` (scripts/build_book.py calls it); skipped with a reason when there is no built site,
no Chromium or no playwright. Saves one screenshot per chapter under _build/screenshots/ for review.
"""

from __future__ import annotations

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

        if _mode() == "smoke":
            assert page.locator(".sclip-smoke-banner").count() > 0, f"{chapter}: smoke banner missing from the page"
            assert "SMOKE MODE" in page.inner_text("body")
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

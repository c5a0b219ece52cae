"""The book as one PDF: Jupyter Book's single-page HTML, printed by headless Chromium, then checked.

This is what Jupyter Book's ``pdfhtml`` builder does (``singlehtml``, then a headless browser prints it), with
the system Chromium that the site check already uses, driven by playwright: ``pdfhtml`` drives pyppeteer,
which downloads a browser build of its own at run time (impossible offline) and is no longer maintained.

    python scripts/book_pdf.py          # build _build/pdf/sclip-book.pdf, check it, copy it into _build/html
    python scripts/book_pdf.py --check  # only check an existing PDF

The check: every chapter's title is in the PDF's text, and its first pages render (pdftoppm) with ink on them.
Chapters are read from the notebook execution cache that `make book` filled, so nothing is executed twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
PDF = BUILD / "pdf" / "sclip-book.pdf"
SITE_COPY = BUILD / "html" / "sclip-book.pdf"  # the site's footer links here
FIRST_PAGES = 3
MIN_INK = 0.005  # a rendered page with text or figures has well over 0.5% non-white pixels


def ensure_tools() -> None:
    """pdftoppm/pdftotext (poppler-utils) and chromium: install them when missing and we may (root, apt-get)."""
    from sclip_lib.testing.browser import find_chromium

    missing = [
        pkg for pkg, path in (("poppler-utils", shutil.which("pdftoppm")), ("chromium", find_chromium())) if not path
    ]
    if not missing or shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    print(f"installing {' '.join(missing)} for the PDF (apt-get install)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=False)


def toc_files() -> list[str]:
    """The table of contents' documents in order, the root first (e.g. ``book/01_preface``)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


def chapter_titles() -> list[str]:
    """The first heading of every chapter in the table of contents, in order."""
    files = toc_files()
    titles = []
    for name in files:
        text = (ROOT / f"{name}.md").read_text(encoding="utf-8")
        titles.append(next(line[2:].strip() for line in text.splitlines() if line.startswith("# ")))
    return titles


def build_singlehtml(env: dict) -> Path:
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--builder", "singlehtml", "--warningiserror"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    # the root document holds the whole book, but with links relative to the output's top folder
    # (singlehtml writes book/01_preface.html with "_static/..." links): print it from there
    page = BUILD / "singlehtml" / f"{toc_files()[0]}.html"
    top = BUILD / "singlehtml" / "sclip-book.html"
    shutil.copyfile(page, top)
    return top


def print_pdf(page_html: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pdf.part")
    from sclip_lib.testing.browser import find_chromium, missing_message

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(missing_message())
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page()
            page.goto(page_html.as_uri(), wait_until="load", timeout=120_000)
            page.evaluate("() => { document.querySelectorAll('details').forEach(d => d.open = true); }")
            page.pdf(
                path=str(tmp),
                format="A4",
                print_background=True,
                margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
            )
        finally:
            browser.close()
    tmp.replace(out)  # atomic: a failed print never leaves a half-written PDF behind


def problems(pdf: Path, titles: list[str]) -> list[str]:
    """What is wrong with the PDF: a missing chapter, or a first page that renders blank."""
    if not pdf.exists():
        return [f"{pdf} does not exist"]
    text = " ".join(
        subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    found = [f"chapter {t!r} is not in the PDF's text" for t in titles if " ".join(t.split()) not in text]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", str(FIRST_PAGES), str(pdf), f"{tmp}/p"], check=True
        )
        pages = sorted(Path(tmp).glob("p-*.png"))
        if len(pages) < FIRST_PAGES:
            found.append(f"only {len(pages)} pages rendered, expected at least {FIRST_PAGES}")
        for png in pages:
            gray = np.asarray(Image.open(png).convert("L"))
            ink = float((gray < 200).mean())
            if ink < MIN_INK:
                found.append(f"page {png.stem.split('-')[-1]} renders blank ({ink:.2%} ink)")
    return found


def main(argv: list[str]) -> int:
    ensure_tools()
    start = time.perf_counter()
    if "--check" not in argv:
        print_pdf(build_singlehtml({**os.environ}), PDF)
        if SITE_COPY.parent.exists():
            shutil.copy2(PDF, SITE_COPY)
    found = problems(PDF, chapter_titles())
    if found:
        print("PDF check FAILED:\n  " + "\n  ".join(found), flush=True)
        return 1
    print(
        f"PDF ok: {PDF} ({PDF.stat().st_size / 1e6:.1f} MB), built and checked in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The built site in headless Chromium: figures render, no traceback in any output, the smoke banner in smoke mode
(and on no page in real mode), the footer stating the mode and image counts, and, with the network cut, every
equation typeset by the site's own MathJax.

Runs after `make book` (scripts/build_book.py calls it); skipped with a reason when there is no built site,
no Chromium or no playwright. Saves one screenshot per chapter, and one per display equation, under
_build/screenshots/ for review.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

from sclip_lib.testing.browser import find_chromium, missing_message

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = find_chromium()  # $SCLIP_CHROMIUM, chromium/google-chrome on PATH, or Playwright's
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The network is cut, as for a reader offline or behind a strict proxy: every host but the loopback
    # (where the site is served; Chromium never proxies it) goes to a closed port, and no name resolves.
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
CHAPTERS = [
    "01_preface",
    "02_clip",
    "03_clip_fails",
    "04_csa",
    "05_implementation",
    "06_demo",
    "07_evaluation",
    "08_family",
    "09_exercises",
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
    images = (
        (ROOT / "_build" / "book-images.txt").read_text().strip()
        if (ROOT / "_build" / "book-images.txt").exists()
        else ""
    )
    assert (
        f"in {_mode()} mode" in footer
        and (f"SCLIP_BOOK_IMAGES={images}" if images else "own benchmark image counts") in footer
    )


@pytest.fixture(scope="module")
def site():
    if not (HTML / "book" / "01_preface.html").exists():
        pytest.skip(f"no built book at {HTML}: run `make book` first")
    if CHROMIUM is None:
        pytest.skip(missing_message() + " (make book installs Debian's when run as root)")
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
        badge = page.locator("article .sclip-colab-badge a:has(img)")
        assert badge.count() == 1, f"{chapter}: no Colab badge"
        href = badge.get_attribute("href")
        assert href.startswith("https://colab.research.google.com/github/") and href.endswith(
            f"/notebooks/{chapter}.ipynb"
        )
        student = page.locator("article .sclip-colab-badge a.sclip-colab-student").get_attribute("href")
        assert student == href.replace("/notebooks/", "/notebooks/student/"), student
        assert page.locator("article .sclip-colab-badge img").evaluate("e => e.complete && e.naturalWidth > 0")
        launch = page.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
        assert set(launch) == {href, student}, f"{chapter}: Colab links disagree: {launch}"


def test_numbered_exercises_solutions_and_proposition(site):
    with opened(site, "09_exercises") as page:
        titles = page.eval_on_selector_all(".exercise .admonition-title", "els => els.map(e => e.innerText)")
        # numbered through the whole book (chapters 2 to 8b end with their own exercises): 7 here, consecutive
        numbers = [int(t.split()[1]) for t in titles]
        assert [t.split()[0] for t in titles] == ["Exercise"] * 7, titles
        assert numbers == list(range(numbers[0], numbers[0] + 7)) and numbers[0] > 1, titles
        assert page.locator(".solution").count() == 7
    with opened(site, "04_csa") as page:
        assert "Proposition 1" in page.inner_text(".proof.proposition")
        assert page.locator("div.proof").count() >= 2  # the proposition and its proof
    with opened(site, "02_clip") as page:
        assert page.locator("a.reference.internal[href*='glossary.html#term-']").count() > 0, "no glossary link"


# ---- mathematics, rendered offline (issue 14) --------------------------------------------------------

import re  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from docutils.nodes import make_id  # noqa: E402

from tests.book_sources import source_math, toc_pages  # noqa: E402

# a page is ready when MathJax has typeset it and the fonts it asked for have loaded (or failed)
MATH_READY = """async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
  await MathJax.startup.promise;
  document.body.getBoundingClientRect();
  await document.fonts.ready;
  return true;
}"""
# what the reader sees: math containers and what MathJax made of them, TeX left in visible text, fonts
MATH_STATE = r"""() => {
  const containers = [...document.querySelectorAll('span.math, div.math')];
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || parent.closest('pre, code, script, style, textarea, mjx-container')) continue;
    if (!parent.checkVisibility()) continue;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\end\{/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 120));
  }
  return {
    containers: containers.length,
    rendered: document.querySelectorAll('mjx-container').length,
    unrendered: containers.filter(c => c.querySelectorAll(':scope > mjx-container').length !== 1)
                          .map(c => c.textContent.trim().slice(0, 120)),
    errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
    raw,
    fonts: [...document.fonts].filter(f => /^MJX/.test(f.family)).map(f => [f.family, f.status]),
    too_wide: [...document.querySelectorAll('div.math > mjx-container')].filter(m => m.scrollWidth > m.clientWidth + 1)
                .map(m => m.parentElement.id || m.textContent.slice(0, 60)),
    numbered: [...document.querySelectorAll('div.math[id^="equation-"]')].map(d => ({
      id: d.id, eqno: (d.querySelector('.eqno')?.firstChild?.textContent || '').trim(),
      rendered: d.querySelector(':scope > mjx-container') !== null})),
    refs: [...document.querySelectorAll('article a.reference.internal[href*="#equation-"]')].map(a => ({
      href: a.getAttribute('href'), text: a.textContent.trim()})),
  };
}"""
# after following a link: the equation it names is the :target, rendered, and on screen
AT_TARGET = """() => {
  const t = document.querySelector(':target');
  if (!t) return null;
  const r = t.getBoundingClientRect();
  return {id: t.id, rendered: t.querySelector('mjx-container') !== null,
          visible: r.bottom > 0 && r.top < window.innerHeight && r.height > 0};
}"""
PAGES = toc_pages()


def _slug(page: str) -> str:
    return page.rsplit("/", 1)[-1]


def _open_offline(browser, url: str):
    """A page at `url`, with every request it makes recorded: off-site ones and local ones that failed."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    offsite, failed = [], []

    def on_request(request):
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
            offsite.append(request.url)

    def on_response(response):
        if response.status >= 400 and urlsplit(response.url).hostname == "127.0.0.1":
            failed.append(f"{response.status} {response.url}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", lambda r: urlsplit(r.url).hostname == "127.0.0.1" and failed.append(f"failed {r.url}"))
    page.goto(url, wait_until="load")
    return page, offsite, failed


def test_network_is_cut(site):
    """The checks below mean something only if another host really cannot be reached."""
    browser, base = site
    page = browser.new_page()
    try:
        page.goto(f"{base}/book/01_preface.html", wait_until="load")
        outcome = page.evaluate("""async () => {
          try { await fetch('https://example.org/', {mode: 'no-cors'}); return 'reached'; }
          catch (e) { return 'blocked'; }
        }""")
        assert outcome == "blocked", (
            "the site check runs with the network reachable: it cannot prove the site is offline"
        )
    finally:
        page.close()


def test_every_page_loads_only_from_the_site(site):
    """Every page of the built site, opened with the network cut, asks no other host for anything and
    finds every file it asks the site for (what a page's scripts fetch too, which no static audit sees)."""
    browser, base = site
    pages = sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if p.relative_to(HTML).parts[0] not in ("_static", "_sources")
    )
    problems = []
    for path in pages:
        page, offsite, failed = _open_offline(browser, f"{base}/{path}")
        try:
            if 'http-equiv="refresh"' in (HTML / path).read_text().lower():
                page.wait_for_url(lambda url, path=path: not url.endswith(f"/{path}"))  # a redirect (index.html)
                page.wait_for_load_state("load")
            page.evaluate(MATH_READY)  # MathJax loads its fonts and components after `load`
            page.evaluate(LOAD_ALL_IMAGES)
            problems += [f"{path}: asked another host for {u}" for u in offsite]
            problems += [f"{path}: {f}" for f in failed if not f.endswith("/favicon.ico")]
        finally:
            page.close()
    assert len(pages) > len(PAGES), f"only {pages} built"
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize("name", PAGES, ids=_slug)
def test_math_renders_offline(site, name):
    """With no network, every equation of the source is typeset by the site's own MathJax, none is left as
    raw TeX, numbered equations keep their numbers and every {eq} reference leads to its equation."""
    browser, base = site
    expected, labels = source_math(name)
    page, offsite, failed = _open_offline(browser, f"{base}/{name}.html")
    try:
        ready = page.evaluate(MATH_READY)
        if expected:
            assert ready, f"{name}: MathJax did not load, so its {expected} equations show as raw TeX"
        state = page.evaluate(MATH_STATE)
        assert not offsite, f"{name}: the page asked other hosts for {offsite}"
        assert not failed, f"{name}: bundled files failed to load: {failed}"
        assert not state["raw"], f"{name}: raw TeX in the visible text: {state['raw'][:5]}"
        assert not state["unrendered"], f"{name}: math left unrendered: {state['unrendered'][:5]}"
        assert not state["errors"], f"{name}: MathJax errors: {state['errors'][:5]}"
        assert state["containers"] == expected, (
            f"{name}: {expected} equations in the source, {state['containers']} on the page"
        )
        assert state["rendered"] == expected, (
            f"{name}: {expected} equations in the source, {state['rendered']} rendered"
        )
        # at a laptop's width a display equation must fit its column, not hide its end behind a scrollbar
        assert not state["too_wide"], f"{name}: display equations wider than the page at 1280 px: {state['too_wide']}"
        if expected:
            bad_fonts = [f for f in state["fonts"] if f[1] == "error"]
            assert not bad_fonts, f"{name}: MathJax fonts failed to load: {bad_fonts}"
            assert any(f[1] == "loaded" for f in state["fonts"]), f"{name}: no MathJax font loaded: {state['fonts']}"

        numbered = {n["id"]: n for n in state["numbered"]}
        assert list(numbered) == [make_id(f"equation-{label}") for label in labels], (
            f"{name}: numbered equations on the page {list(numbered)} differ from the source's labels {labels}"
        )
        numbers = [n["eqno"] for n in state["numbered"]]
        assert all(numbers) and len(set(numbers)) == len(numbers), f"{name}: equation numbers {numbers}"
        assert all(n["rendered"] for n in state["numbered"]), f"{name}: a numbered equation is not rendered"

        for ref in state["refs"]:
            target_page, _, anchor = ref["href"].partition("#")
            if target_page and target_page != f"{_slug(name)}.html":
                # an equation of another page: its number there (that page's own test checks it renders)
                there = (HTML / name).parent / target_page
                eqno = re.search(rf'id="{re.escape(anchor)}"[^>]*>\s*<span class="eqno">([^<]*)<', there.read_text())
                assert eqno and eqno.group(1).strip() == ref["text"], (
                    f"{name}: {{eq}} link {ref} does not match {there}"
                )
                continue
            assert anchor in numbered, f"{name}: {{eq}} link {ref} names no equation on the page"
            assert ref["text"] == numbered[anchor]["eqno"], (
                f"{name}: {{eq}} link text {ref['text']!r} is not its equation's number {numbered[anchor]['eqno']!r}"
            )
            page.click(f'article a.reference.internal[href="{ref["href"]}"]')
            landed = page.evaluate(AT_TARGET)
            assert landed == {"id": anchor, "rendered": True, "visible": True}, f"{name}: following {ref}: {landed}"

        SHOTS.mkdir(parents=True, exist_ok=True)
        for i, equation in enumerate(page.query_selector_all("div.math"), 1):
            equation.scroll_into_view_if_needed()
            equation.screenshot(path=str(SHOTS / f"{_slug(name)}-equation-{i}.png"))
    finally:
        page.close()


# -- explorers (sclip_lib/book/explorers.py): driven in the browser, their numbers checked against Python ------------
EXPLORER_READY = "el => el.__sclip && el.__sclip.ready"
EXPLORER_STATE = (
    "el => { const s = el.__sclip; return {patch: s.patch, rows: s.rows, stats: s.stats, error: s.error || null, "
    "values: s.values, shares: s.shares, known: s.known}; }"
)


@pytest.fixture(scope="module")
def python_side(request):
    """The build's model (its mode from _build/book-mode.txt) and a function giving Python's numbers for an image."""
    import torch

    import sclip_lib as sl
    from sclip_lib import book
    from sclip_lib.book import explorers as explorer

    if _mode() == "real" and book.local_hub():
        # a real-mode build against the local hub (scripts/build_book.py passes SCLIP_BOOK_HUB=local on): the
        # tests' own hub serves the same seeded weights (sclip_lib/testing/hub_repos.py) on the tests' endpoint
        request.getfixturevalue("local_hub")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(book.MODE_ENV, _mode() if _mode() in ("real", "smoke") else "smoke")
        model = book.load_model()
    torch.set_grad_enabled(False)

    def inputs(name):
        return explorer._model_input(model, explorer.crop_image(book.sample_images([name])[name]))

    return model, inputs, sl, book, explorer


def _offline_page(browser, base):
    """A page that may load only from the local site: every other request is refused and recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    refused = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, refused


def _explorer(page, kind):
    root = page.locator(f".sclip-explorer[data-kind={kind}]").first
    root.scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('.sclip-explorer[data-kind={kind}]'); "
        f"return el && el.__sclip && (el.__sclip.ready || el.__sclip.error); }}",
        timeout=60000,
    )
    return root


def _settle(root):
    root.page.wait_for_timeout(50)
    root.page.wait_for_function(
        f"el => ({EXPLORER_READY})(el) || el.__sclip.error", arg=root.element_handle(), timeout=30000
    )
    state = root.evaluate(EXPLORER_STATE)
    assert state["error"] is None, state["error"]
    return state


def _hover_patch(root, patch, grid):
    box = root.locator("canvas").first.bounding_box()
    root.page.mouse.move(
        box["x"] + (patch[1] + 0.5) * box["width"] / grid[1], box["y"] + (patch[0] + 0.5) * box["height"] / grid[0]
    )
    return _settle(root)


def _shown(root, role):
    return float(root.locator(f"[data-role='{role}']").inner_text().split()[0].rstrip("%"))


def _explorer_files(page) -> dict[str, int]:
    """The data files the page's explorers load, with their sizes on disk."""
    configs = page.eval_on_selector_all("script[id$='-config']", "els => els.map(e => JSON.parse(e.textContent))")
    urls = {s["url"] for c in configs for s in c["sources"].values() if "url" in s}
    return {u: (HTML / "book" / u).stat().st_size for u in urls}


@contextlib.contextmanager
def _chapter_explorer(site, chapter, kind):
    """``chapter``'s ``kind`` explorer on a page that may load only from the site; afterwards, its screenshot
    is saved and no data file was refused."""
    browser, base = site
    page, refused = _offline_page(browser, base)
    try:
        page.goto(f"{base}/book/{chapter}.html", wait_until="load")
        root = _explorer(page, kind)
        yield root
        SHOTS.mkdir(parents=True, exist_ok=True)
        root.screenshot(path=str(SHOTS / f"explorer-{kind}.png"))
        assert not [u for u in refused if "explorer-data" in u]
    finally:
        page.close()


def test_attention_explorer_matches_python(site, python_side):
    """Chapter 3: hover a patch, move the block slider; the rows and numbers shown equal Python's (1e-3)."""
    import numpy as np

    model, inputs, sl, book, explorer = python_side
    with _chapter_explorer(site, "03_clip_fails", "attention") as root:
        grid = (14, 14)
        image = book.EXPLORERS["03_clip_fails"]["images"][0]
        x = inputs(image)
        enc = sl.DenseEncoder(model, "vanilla")
        layers = len(model.visual.transformer.resblocks)
        for layer, patch in [(layers, (3, 5)), (4, (10, 2))]:
            root.locator("[data-role=layer]").evaluate(
                "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }", layer
            )
            state = _hover_patch(root, patch, grid)
            assert state["patch"] == list(patch)
            q = 1 + patch[0] * grid[1] + patch[1]
            for variant in explorer.VARIANTS:
                attn = enc.attention_maps(x, layer=layer - 1, attention=variant)[0]
                row = attn.float().mean(0)[q].numpy()
                got = np.array(state["rows"][variant])
                assert np.abs(got - row).max() < 1e-3, f"block {layer}, {variant}: row differs"
                assert abs(_shown(root, f"{variant}-self") - row[q]) < 1e-3
                assert abs(_shown(root, f"{variant}-cls") - row[0]) < 1e-3
                assert abs(_shown(root, f"{variant}-max") - row[1:].max()) < 1e-3
                assert abs(_shown(root, f"{variant}-invariance") - book.spatial_invariance(attn)) < 1e-3


def test_similarity_explorer_matches_python(site, python_side):
    """Chapter 3: type a word and then three; cosines at a patch, map ranges and argmax shares equal Python's."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    model, inputs, sl, book, explorer = python_side
    with _chapter_explorer(site, "03_clip_fails", "similarity") as root:
        grid, patch = (14, 14), (6, 8)
        x = inputs(book.EXPLORERS["03_clip_fails"]["images"][0])
        feats = {v: sl.DenseEncoder(model, v).dense_features(x)[0].float() for v in explorer.VARIANTS}
        box = root.locator("[data-role=words]")
        box.fill("")
        box.press_sequentially("ca")
        suggestions = root.locator("[data-role=suggestion]").all_inner_texts()
        assert "cat" in suggestions, suggestions
        box.press_sequentially("t")
        _hover_patch(root, patch, grid)
        text = sl.text_embeddings(model, ["cat", "wall", "floor"], explorer.DEFAULT_TEMPLATES).float()
        for variant in explorer.VARIANTS:
            cos = torch.einsum("chw,c->hw", feats[variant], text[0])
            assert abs(_shown(root, f"{variant}-cos") - cos[patch].item()) < 1e-3
            assert abs(_shown(root, f"{variant}-min") - cos.min().item()) < 1e-3
            assert abs(_shown(root, f"{variant}-max") - cos.max().item()) < 1e-3
        box.fill("cat; wall; floor")
        state = _settle(root)
        assert state["known"] == ["cat", "wall", "floor"]
        for variant in explorer.VARIANTS:
            maps = torch.einsum("chw,qc->qhw", feats[variant], text)
            labels = F.interpolate(maps[None], size=(224, 224), mode="bilinear", align_corners=False)[0].argmax(0)
            shares = torch.bincount(labels.flatten(), minlength=3).float() / labels.numel()
            assert np.abs(np.array(state["shares"][variant]) - shares.numpy()).max() < 1e-3
            for k in range(3):
                assert abs(_shown(root, f"{variant}-share-{k}") / 100 - shares[k].item()) < 1e-3
        box.fill("cat; qwertyuiop")
        _settle(root)
        assert "qwertyuiop" in root.locator("[data-role=message]").inner_text()
        box.fill("cat; wall; floor")
        _settle(root)


@pytest.mark.parametrize("chapter", ["03_clip_fails", "04_csa", "06_demo"])
def test_explorer_pages_offline_and_within_budget(site, chapter):
    """Each chapter's explorers run with every request outside the site refused; their files fit the budget."""
    from sclip_lib import book
    from sclip_lib.book import explorers as explorer

    browser, base = site
    page, _ = _offline_page(browser, base)
    try:
        page.goto(f"{base}/book/{chapter}.html", wait_until="load")
        kinds = book.EXPLORERS[chapter]["kinds"]
        assert sorted(page.eval_on_selector_all(".sclip-explorer", "els => els.map(e => e.dataset.kind)")) == sorted(
            kinds
        )
        for kind in kinds:
            root = _explorer(page, kind)
            _settle(root)
            if _mode() == "smoke":
                assert root.locator(".sclip-explorer-smoke").count() == 1
            root.screenshot(path=str(SHOTS / f"{chapter}-explorer-{kind}.png"))
        files = _explorer_files(page)
        assert files, f"{chapter}: the explorers load no files from the site"
        total = sum(files.values())
        (ROOT / "_build" / f"explorer-data-{chapter}.txt").write_text(
            "".join(f"{size}\t{url}\n" for url, size in sorted(files.items())) + f"{total}\ttotal\n"
        )
        assert total < explorer.BUDGET_BYTES, f"{chapter}: {total / 1e6:.2f} MB of explorer data"
    finally:
        page.close()

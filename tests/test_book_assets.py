"""Every page of the built site loads its scripts, styles, fonts and images from the site itself.

Anything a browser fetches on its own while showing a page (`<script src>`, stylesheets, preloads,
icons, images, media, frames, CSS `@import`/`url()`, URLs that inline scripts inject) must be bundled in
_build/html; only links the reader clicks (launch buttons, the repository link) may point elsewhere.
Otherwise a reader behind a proxy, on an intranet or offline gets a broken page (issue 14: the formulas
stayed raw TeX because MathJax came from a CDN). The audit is checked on known snippets first, then run
over the built site and its student edition when built (`make book` runs this file after the build).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SITES = [HTML, ROOT / "_build" / "student" / "_build" / "html"]  # the book, and its student edition
# <link rel=...> values that make the browser fetch (or connect) by itself
FETCHING_RELS = {
    "stylesheet",
    "preload",
    "modulepreload",
    "prefetch",
    "prerender",
    "preconnect",
    "dns-prefetch",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "apple-touch-icon-precomposed",
    "mask-icon",
    "manifest",
}
# attributes the browser loads by itself, per tag
LOADING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "base": ("href",),
}
EXECUTABLE_SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module"}
# a quoted absolute or protocol-relative address inside an inline script
SCRIPT_URL = re.compile(r"""["'`]((?:[a-z][a-z0-9+.-]*:)?//[^"'`\s]+)""", re.IGNORECASE)
# XML namespaces are names, never fetched
NAMESPACES = ("http://www.w3.org/",)
# sphinx-thebe defines THEBE_JS_URL on every page; sphinx-thebe.js loads it only from initThebe(), which
# only a Thebe launch button calls (a click). Allowed on pages without such a button, and only there.
THEBE_URL = re.compile(r"""const THEBE_JS_URL = "[^"]*";?""")
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.IGNORECASE)


def is_offsite(url: str) -> bool:
    """True when the URL names another host: it has a network scheme or is protocol-relative."""
    url = url.strip()
    if url.startswith("//"):
        return True
    scheme = urlsplit(url).scheme.lower()
    return scheme not in ("", "data", "blob", "about", "javascript", "mailto")


def css_urls(css: str) -> list[str]:
    """Addresses a stylesheet loads by itself (`url()` and `@import`), comments left out."""
    found = []
    for match in CSS_URL.finditer(CSS_COMMENT.sub("", css)):
        found.append((match.group(2) if match.group(2) is not None else match.group(4)).strip())
    return [u for u in found if u]


def _srcset(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


class PageAssets(HTMLParser):
    """Collects what a page fetches on its own: `loads` as (what, url), and inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []
        self.inline_scripts: list[str] = []
        self.thebe_button = False
        self.math_elements = 0
        self._script: list[str] | None = None
        self._style: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attr = {k.lower(): (v or "") for k, v in attrs}
        classes = attr.get("class", "").split()
        self.thebe_button |= "thebe-launch-button" in classes
        self.math_elements += tag in ("span", "div") and "math" in classes
        for name in LOADING_ATTRS.get(tag, ()):
            if name == "href" and tag == "use" and attr.get(name, "").startswith("#"):
                continue
            if attr.get(name):
                urls = _srcset(attr[name]) if name == "srcset" else [attr[name]]
                self.loads += [(f"<{tag} {name}>", u) for u in urls]
        if tag == "link" and attr.get("href"):
            rels = set(attr.get("rel", "").lower().split())
            if rels & FETCHING_RELS:
                self.loads.append((f"<link rel={attr.get('rel')}>", attr["href"]))
        if tag == "meta" and attr.get("http-equiv", "").lower() == "refresh":
            target = re.search(r"url\s*=\s*(.+)$", attr.get("content", ""), re.IGNORECASE)
            if target:
                self.loads.append(("<meta refresh>", target.group(1).strip("'\" ")))
        if attr.get("style"):
            self.loads += [("style attribute url()", u) for u in css_urls(attr["style"])]
        if tag == "script" and not attr.get("src"):
            executable = attr.get("type", "").lower() in EXECUTABLE_SCRIPT_TYPES
            self._script = [] if executable else None
        if tag == "style":
            self._style = []

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)
        if self._style is not None:
            self._style.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.inline_scripts.append("".join(self._script))
            self._script = None
        if tag == "style" and self._style is not None:
            self.loads += [("<style> url()", u) for u in css_urls("".join(self._style))]
            self._style = None


def parse_page(html: str) -> PageAssets:
    parser = PageAssets()
    parser.feed(html)
    parser.close()
    return parser


def offsite_loads(html: str) -> list[str]:
    """Everything the page would fetch from another host without a click, as readable lines."""
    page = parse_page(html)
    bad = [f"{what}: {url}" for what, url in page.loads if is_offsite(url)]
    for script in page.inline_scripts:
        if not page.thebe_button:
            script = THEBE_URL.sub("", script)
        urls = [u for u in SCRIPT_URL.findall(script) if not u.startswith(NAMESPACES)]
        bad += [f"inline <script>: {u}" for u in urls]
    return bad


# ---- the audit itself, on snippets with known answers ---------------------------------------------

OFFSITE = [
    '<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>',
    '<script defer src="//cdn.example.org/x.js"></script>',
    '<link rel="stylesheet" href="https://fonts.example.com/css?family=Lato">',
    '<link rel="preload" as="font" href="https://cdn.example.org/f.woff2">',
    '<link rel="preconnect" href="https://fonts.example.com">',
    '<link rel="shortcut icon" href="http://example.org/favicon.ico">',
    '<img src="https://example.org/logo.png">',
    '<img srcset="a.png 1x, https://example.org/b.png 2x">',
    '<video poster="https://example.org/p.jpg"></video>',
    '<iframe src="https://example.org/embed"></iframe>',
    '<svg><image href="https://example.org/i.png"/></svg>',
    "<div style=\"background: url('https://example.org/bg.png')\"></div>",
    '<style>@import "https://fonts.example.com/css2";</style>',
    "<style>@font-face { src: url(https://example.org/f.woff2) }</style>",
    '<meta http-equiv="refresh" content="0; url=https://example.org/">',
    '<script>var s = document.createElement("script"); s.src = "https://example.org/thebe.js";</script>',
    '<button class="thebe-launch-button"></button><script>const THEBE_JS_URL = "https://example.org/t.js"</script>',
]
ONSITE = [
    '<a href="https://colab.example.org/github/x/y/blob/main/book/04_csa.ipynb">Colab</a>',
    '<link rel="canonical" href="https://example.org/book/04_csa.html">',
    '<script defer src="../_static/mathjax/es5/tex-mml-chtml.js?v=1"></script>',
    '<img src="data:image/png;base64,iVBORw0KGgo=">',
    '<link rel="stylesheet" href="../_static/styles/theme.css?digest=1">',
    '<script>const THEBE_JS_URL = "https://example.org/t.js"; const thebe_selector = ".thebe"</script>',
    '<script type="text/x-thebe-config">{binderOptions: {repo: "x/y", url: "https://example.org"}}</script>',
    '<svg xmlns="http://www.w3.org/2000/svg"><use href="#icon"/></svg>',
    '<style>/* from https://example.org */ .a { background: url("../img/a.svg") }</style>',
    '<script>document.documentElement.dataset.mode = localStorage.getItem("mode") || "";</script>',
    '<meta http-equiv="refresh" content="0; url=book/01_preface.html">',
]


@pytest.mark.parametrize("snippet", OFFSITE)
def test_audit_flags_an_automatic_offsite_load(snippet):
    assert offsite_loads(snippet), f"not flagged: {snippet}"


@pytest.mark.parametrize("snippet", ONSITE)
def test_audit_passes_bundled_assets_and_clickable_links(snippet):
    assert offsite_loads(snippet) == []


def test_css_urls_skip_comments_and_find_imports():
    css = '/* https://fontawesome.com url(https://x.org/a) */ @import "../basic.css"; a{src:url( "f.woff2" )}'
    assert css_urls(css) == ["../basic.css", "f.woff2"]
    assert [is_offsite(u) for u in css_urls("@import url(//fonts.example.com/a.css);")] == [True]


# ---- the built site --------------------------------------------------------------------------------


def built_sites() -> list[Path]:
    sites = [site for site in SITES if (site / "index.html").exists()]
    if not sites:
        pytest.skip(f"no built site at {HTML}: run `make book` first")
    return sites


def built_pages() -> list[tuple[Path, Path]]:
    """(site, page) for every page of every built site (the .html under _static are theme templates)."""
    return [
        (site, page)
        for site in built_sites()
        for page in sorted(site.rglob("*.html"))
        if page.relative_to(site).parts[0] not in ("_static", "_sources")
    ]


def _local_target(site: Path, file: Path, url: str) -> Path | None:
    """The file a same-site address in `file` points at, or None for data: and other non-file URLs."""
    if is_offsite(url) or urlsplit(url).scheme:
        return None
    path = unquote(urlsplit(url).path)
    if not path:
        return None
    base = "/" + file.relative_to(site).as_posix()
    return site / urljoin(base, path).lstrip("/")


def test_built_pages_load_nothing_from_other_hosts():
    problems = []
    for _site, page in built_pages():
        problems += [f"{page.relative_to(ROOT)}: {line}" for line in offsite_loads(page.read_text())]
    assert not problems, "pages fetch from other hosts (bundle these into the site):\n" + "\n".join(problems[:40])


def test_built_css_loads_nothing_from_other_hosts():
    problems = []
    for site in built_sites():
        for css in sorted(site.rglob("*.css")):
            for url in css_urls(css.read_text(errors="replace")):
                if is_offsite(url):
                    problems.append(f"{css.relative_to(ROOT)}: {url}")
                elif (target := _local_target(site, css, url)) is not None and not target.exists():
                    problems.append(f"{css.relative_to(ROOT)}: {url} is missing from the site")
    assert not problems, "stylesheets fetch from other hosts or miss files:\n" + "\n".join(problems[:40])


def test_built_pages_local_assets_exist():
    missing = []
    for site, page in built_pages():
        for what, url in parse_page(page.read_text()).loads:
            target = _local_target(site, page, url)
            if target is not None and not target.exists():
                missing.append(f"{page.relative_to(ROOT)}: {what} {url}")
    assert not missing, "pages load files the site does not have:\n" + "\n".join(missing[:40])


def test_pages_with_math_load_the_bundled_mathjax():
    with_math = 0
    for site, page in built_pages():
        parsed = parse_page(page.read_text())
        if not parsed.math_elements:
            continue
        with_math += 1
        mathjax = [u for what, u in parsed.loads if what.startswith("<script") and "mathjax" in u.lower()]
        assert mathjax, f"{page.relative_to(ROOT)} has math but loads no MathJax"
        for url in mathjax:
            target = _local_target(site, page, url)
            assert target is not None and target.is_file(), f"{page.relative_to(ROOT)}: MathJax {url} is not bundled"
            fonts = target.parent / "output" / "chtml" / "fonts" / "woff-v2"
            assert any(fonts.glob("MathJax_Main-Regular.woff")), f"MathJax's CHTML fonts are missing from {fonts}"
    assert with_math > 0, "no page of the built site has any math: the derivation chapter should"

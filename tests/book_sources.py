"""The book's pages and their sources, and the number of equations each source holds.

The site tests compare what the browser renders with what the author wrote, so the count here reads the
chapter source itself (a notebook's markdown cells, or a MyST Markdown notebook / page), parsed with
MyST's own Markdown parser with dollar math, amsmath and colon fences always on: the book's way of
writing math, whatever _config.yml enables (switching `dollarmath` off would leave `$x$` raw on the site,
and that must show up as a difference, not as zero on both sides).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# directives whose body is code or text, not Markdown: their `$` are not math
LITERAL_DIRECTIVES = {"code-cell", "code-block", "code", "sourcecode", "literalinclude", "raw", "eval-rst", "glue"}
MATH_TOKENS = {"math_inline", "math_inline_double", "math_block", "math_block_label", "amsmath"}
_DIRECTIVE = re.compile(r"^\{([\w:-]+)\}")


def toc_pages() -> list[str]:
    """Every page of the book in _toc.yml order, as paths without suffix ("book/04_csa")."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return pages


def page_source(page: str) -> Path:
    """The source file of a page: MyST Markdown (book/x.md) when there is one, else the notebook."""
    for suffix in (".md", ".ipynb"):
        path = ROOT / f"{page}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"no source for page {page!r} (looked for {page}.md and {page}.ipynb)")


def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence"})
    return create_md_parser(config, RendererHTML)


def _directive_body(content: str) -> str:
    """A directive's content without its options (`:key: value` lines or a leading `---` YAML block)."""
    lines = content.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    while lines and re.match(r"^\s*:[\w-]+:", lines[0]):
        lines = lines[1:]
    return "\n".join(lines)


def _math(markdown: str, md, labels: list[str]) -> int:
    """Count the math elements of some Markdown; append the labels of numbered equations to `labels`."""
    count = 0
    for token in md.parse(markdown):
        for tok in (token, *(token.children or [])):
            if tok.type in MATH_TOKENS:
                count += 1
                if tok.type == "math_block_label":
                    labels.append(tok.info)
            elif tok.type == "myst_role" and tok.meta.get("name") == "math":
                count += 1
        if token.type in ("fence", "colon_fence"):
            match = _DIRECTIVE.match(token.info.strip())
            if not match:
                continue  # a plain code block
            name = match.group(1)
            if name == "math":
                count += 1
                label = re.search(r"^\s*:label:\s*(\S+)", token.content, re.MULTILINE)
                labels += [label.group(1)] if label else []
            elif name not in LITERAL_DIRECTIVES:
                count += _math(_directive_body(token.content), md, labels)
    return count


def count_equations(markdown: str) -> int:
    """Math elements the Markdown makes: inline `$..$` and `{math}` roles, display `$$..$$`, amsmath
    environments and `{math}` directives, including those nested in directives such as admonitions."""
    return _math(markdown, _parser(), [])


def markdown_parts(path: Path) -> list[str]:
    """The Markdown a source holds: each markdown cell of a notebook, or the whole text of a .md file
    (its code cells are `{code-cell}` directives, which count_equations skips)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return [
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "markdown"
        ]
    return [path.read_text()]


def source_math(page: str) -> tuple[int, list[str]]:
    """A page's source: its number of math elements, and the labels of its numbered equations in order."""
    md, labels = _parser(), []
    count = sum(_math(part, md, labels) for part in markdown_parts(page_source(page)))
    return count, labels

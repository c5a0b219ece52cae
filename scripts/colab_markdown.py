"""MyST Markdown -> the plain Markdown (and the few code cells) that Jupyter and Colab render.

scripts/notebooks.py calls :func:`convert` on every Markdown cell of a chapter:

- ``{glue}`` roles: the value's name in code font, and after the paragraph a cell ``book.show_glued(...)`` that
  prints the values once the cells above have run (sclip_lib.book keeps every glued value);
- ``{ref}``, ``{numref}``, ``{prf:ref}``, ``{eq}``, ``{doc}``: links to the page and anchor on the book's site;
- ``{term}``: the text, linked to its glossary entry; ``{cite}``: "Author et al. year", linked to the references;
- ``{math}``: ``$..$``; display math keeps its LaTeX, a labelled equation gets its number as ``\\tag``;
- admonitions, propositions, proofs, exercises: quoted blocks; solutions: a ``<details>`` block (reading
  edition) or nothing (student edition); ``literalinclude`` with ``:pyobject:``: a cell that shows the
  installed library's source (``book.show_source``).

Anything else in MyST syntax raises :class:`ConversionError` naming the construct, so a new one gets a form
here before a Colab copy could show it raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>:{3,}|`{3,})\{(?P<name>[\w:+-]+)\}[ \t]*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[\w:+-]*)\}`(?P<body>[^`]*)`")
TARGET = re.compile(r"^\((?P<label>[\w:.-]+)\)=\s*$")
DISPLAY_LABEL = re.compile(r"^(?P<indent>[ \t]*)\$\$[ \t]*\((?P<label>[\w:.-]+)\)[ \t]*$")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}
PROOF_KINDS = {
    "proposition",
    "theorem",
    "lemma",
    "corollary",
    "definition",
    "remark",
    "example",
    "conjecture",
    "criterion",
    "algorithm",
    "axiom",
    "observation",
    "property",
    "assumption",
    "notation",
}


class ConversionError(ValueError):
    """A MyST construct with no Colab form yet."""


@dataclass
class Index:
    """What the cross references need: where each label is on the site and what to call it."""

    site: str  # the site's root URL, ending in "/"
    titles: dict[str, str] = field(default_factory=dict)  # page stem -> its title
    labels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # label -> (page stem, anchor, text)
    equations: dict[str, tuple[str, int]] = field(default_factory=dict)  # label -> (page stem, number)
    terms: dict[str, str] = field(default_factory=dict)  # glossary term (lower case) -> anchor
    cites: dict[str, str] = field(default_factory=dict)  # bibtex key -> "Author et al. year"

    @classmethod
    def of_book(cls, book: Path, toc: Path | None = None, site: str = "") -> Index:
        index = cls(site)
        for md in sorted(book.glob("*.md")):
            index._read_page(md.stem, md.read_text(encoding="utf-8"))
        glossary = book / "glossary.md"
        if glossary.exists():
            index._read_glossary(glossary.read_text(encoding="utf-8"))
        bib = book / "references.bib"
        if bib.exists():
            index._read_bib(bib)
        return index

    def page(self, stem: str, anchor: str = "") -> str:
        return f"{self.site}book/{stem}.html" + (f"#{anchor}" if anchor else "")

    def _read_page(self, stem: str, text: str) -> None:
        lines = text.splitlines()
        heading, pending, number = "", None, 0
        for i, line in enumerate(lines):
            if line.startswith("#") and re.match(r"^#+ ", line):
                heading = line.lstrip("#").strip()
                self.titles.setdefault(stem, heading) if line.startswith("# ") else None
                if pending:
                    self.labels[pending] = (stem, pending, heading)
                    pending = None
            elif TARGET.match(line):
                pending = TARGET.match(line)["label"]
            elif DISPLAY_LABEL.match(line):
                number += 1
                self.equations[DISPLAY_LABEL.match(line)["label"]] = (stem, number)
            elif OPEN.match(line):
                m = OPEN.match(line)
                label = next(
                    (o.split(":label:")[1].strip() for o in lines[i + 1 : i + 6] if o.strip().startswith(":label:")), ""
                )
                if label:
                    kind = m["name"].split(":")[-1]
                    name = {"exercise": "Exercise"}.get(kind, kind.capitalize())
                    arg = m["arg"].strip()
                    self.labels[label] = (stem, label, f"{name} ({arg or heading})" if kind != "math" else label)

    def _read_glossary(self, text: str) -> None:
        block = re.search(r"^```\{glossary\}\n(.*?)^```", text, re.S | re.M)
        for line in (block.group(1) if block else "").splitlines():
            if line.strip() and not line[0].isspace():
                term = line.strip()
                self.terms[term.lower()] = "term-" + re.sub(r"[^A-Za-z0-9]+", "-", term).strip("-")

    def _read_bib(self, path: Path) -> None:
        from pybtex.database import parse_file

        for key, entry in parse_file(str(path)).entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            last = [re.sub(r"[{}\\\"']", "", " ".join(p.last_names)) for p in people]
            who = (
                last[0]
                if len(last) == 1
                else f"{last[0]} and {last[1]}"
                if len(last) == 2
                else f"{last[0]} et al."
                if last
                else key
            )
            self.cites[key] = f"{who} {entry.fields.get('year', '')}".strip()


# -- roles --------------------------------------------------------------------------------------------
def _split_explicit(body: str) -> tuple[str | None, str]:
    m = EXPLICIT.match(body)
    return (m["text"].strip(), m["target"].strip()) if m else (None, body.strip())


def _role(name: str, body: str, page: str, index: Index, glued: list[str]) -> str:
    text, target = _split_explicit(body)
    if name in ("glue", "glue:", "glue:text", "glue:md"):
        glued.append(target)
        return f"`{target.partition(':')[0]}`"
    if name == "math":
        return f"${body}$"
    if name in ("ref", "numref", "prf:ref"):
        if target not in index.labels:
            raise ConversionError(f"{{{name}}}`{body}`: no label {target!r} in book/*.md")
        stem, anchor, title = index.labels[target]
        return f"[{text or title}]({index.page(stem, anchor)})"
    if name == "eq":
        if target not in index.equations:
            raise ConversionError(f"{{eq}}`{body}`: no labelled equation {target!r} in book/*.md")
        stem, number = index.equations[target]
        where = "" if stem == page else f" of {index.titles.get(stem, stem)}"
        return f"[({number}){where}]({index.page(stem, 'equation-' + target)})"
    if name == "doc":
        stem = Path(target).name
        if stem not in index.titles:
            raise ConversionError(f"{{doc}}`{body}`: no page book/{stem}.md")
        return f"[{text or index.titles[stem]}]({index.page(stem)})"
    if name == "term":
        anchor = index.terms.get(target.lower())
        if anchor is None:
            raise ConversionError(f"{{term}}`{body}`: {target!r} is not in book/glossary.md")
        return f"[{text or target}]({index.page('glossary', anchor)})"
    if name.startswith("cite"):
        keys = [k.strip() for k in target.split(",")]
        missing = [k for k in keys if k not in index.cites]
        if missing:
            raise ConversionError(f"{{{name}}}`{body}`: {missing} not in book/references.bib")
        links = "; ".join(f"[{index.cites[k]}]({index.page('references')})" for k in keys)
        return f"({links})" if name in ("cite", "cite:p") else links
    raise ConversionError(f"the role {{{name}}}`{body}` has no Colab form (scripts/colab_markdown.py)")


def _inline(text: str, page: str, index: Index, glued: list[str]) -> str:
    """Roles, labelled display math, targets and comments in plain Markdown (outside fenced code)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if re.match(r"^\s*(```|~~~)", line):
            fenced = not fenced
            out.append(line)
            continue
        if fenced:
            out.append(line)
            continue
        if TARGET.match(line) or re.match(r"^%", line):
            continue  # a label (the site's anchor) or a MyST comment
        m = DISPLAY_LABEL.match(line)
        if m:
            _, number = index.equations.get(m["label"], (page, 0))
            out.append(f"{m['indent']}\\tag{{{number}}}" if number else "")
            out.append(f"{m['indent']}$$")
            continue
        out.append(ROLE.sub(lambda r: _role(r["name"], r["body"], page, index, glued), line))
    return "\n".join(out)


# -- directives ---------------------------------------------------------------------------------------
def _options(lines: list[str]) -> tuple[dict, list[str]]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block) and the rest of its body."""
    if lines and lines[0].strip() == "---":
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
        return yaml.safe_load("\n".join(lines[1:end])) or {}, lines[end + 1 :]
    options = {}
    while lines and re.match(r"^\s*:[\w-]+:", lines[0]):
        key, _, value = lines[0].strip()[1:].partition(":")
        options[key] = value.strip()
        lines = lines[1:]
    return options, lines


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip("\n").split("\n"))


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary><b>{summary}</b> (click to open)</summary>\n\n{body.strip()}\n\n</details>"


def _directive(
    name: str, arg: str, options: dict, body: str, page: str, index: Index, with_solutions: bool, glued: list[str]
) -> list[tuple[str, str]]:
    inner = lambda: _markdown_only(body, page, index, with_solutions, glued).strip("\n")  # noqa: E731
    if name != "literalinclude":
        arg = _inline(arg, page, index, glued)
    kind = name.split(":")[-1]
    if name == "literalinclude":
        obj = options.get("pyobject")
        module = re.match(r"^(?:\.\./)?(sclip_lib/[\w/]+)\.py$", arg.strip())
        if not (obj and module):
            raise ConversionError(f"literalinclude {arg!r}: only `:pyobject:` of a sclip_lib module has a Colab form")
        dotted = module.group(1).removesuffix("/__init__").replace("/", ".")  # a package's own file: its name
        return [("code", f'book.show_source("{dotted}.{obj}")')]
    if name == "admonition" or name in ADMONITIONS:
        title = arg.strip() or name.capitalize()
        if "dropdown" in options.get("class", ""):
            return [("markdown", _details(title, inner()))]
        return [("markdown", _quote(f"**{title}**\n\n{inner()}"))]
    if name == "exercise":
        label = options.get("label", "")
        link = f" ([on the site]({index.page(page, label)}))" if label else ""
        return [("markdown", _quote(f"**Exercise{': ' + arg.strip() if arg.strip() else ''}**{link}\n\n{inner()}"))]
    if name == "solution":
        return [("markdown", _details("Solution", inner()))] if with_solutions else []
    if name.startswith("prf:") and kind in PROOF_KINDS:
        title = f"**{kind.capitalize()}{' (' + arg.strip() + ')' if arg.strip() else ''}.**"
        return [("markdown", _quote(f"{title}\n\n{inner()}"))]
    if name == "prf:proof":
        return [("markdown", f"*Proof.* {inner().strip()} $\\square$")]
    if name == "math":
        return [("markdown", f"$$\n{body.strip()}\n$$")]
    if name in ("code-block", "code", "sourcecode"):
        return [("markdown", f"```{arg.strip()}\n{body}\n```")]
    raise ConversionError(f"the directive {{{name}}} has no Colab form (scripts/colab_markdown.py)")


def _paragraphs(lines: list[str]) -> list[list[str]]:
    """Lines split into blocks at blank lines outside fenced code (each block keeps its trailing blank line)."""
    blocks, current, fenced = [], [], False
    for line in lines:
        current.append(line)
        if re.match(r"^\s*(```|~~~)", line):
            fenced = not fenced
        if not fenced and not line.strip():
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def _show_glued(names: list[str]) -> tuple[str, str]:
    keys = ", ".join(f'"{k}"' for k in dict.fromkeys(names))
    return ("code", f"book.show_glued({keys})  # the values the text above cites")


def _blocks(
    text: str, page: str, index: Index, with_solutions: bool, glued: list[str] | None = None
) -> list[tuple[str, str]]:
    """Split Markdown at its top-level directives; convert each directive and each stretch between them.

    Nested (``glued`` given), the glued names found go to ``glued``; at the top level, a cell that prints
    them follows the paragraph or directive that cites them."""
    top = glued is None
    lines, out, plain, i = text.split("\n"), [], [], 0

    def add(kind_text: list[tuple[str, str]], names: list[str]):
        out.extend(kind_text)
        if top and names:
            out.append(_show_glued(names))
        elif names:
            glued.extend(names)

    def flush():
        for paragraph in _paragraphs(plain) if top else [plain]:
            names: list[str] = []
            converted = _inline("\n".join(paragraph), page, index, names)
            add([("markdown", converted)], names)
        plain.clear()

    while i < len(lines):
        m = OPEN.match(lines[i])
        if not m:
            plain.append(lines[i])
            i += 1
            continue
        fence = m["fence"]
        close = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if close is None:
            raise ConversionError(f"the directive {{{m['name']}}} opened with {fence} is never closed")
        options, body = _options(lines[i + 1 : close])
        flush()
        body_text = "\n".join(line[len(m["indent"]) :] if line.startswith(m["indent"]) else line for line in body)
        names: list[str] = []
        add(_directive(m["name"], m["arg"], options, body_text, page, index, with_solutions, names), names)
        i = close + 1
    flush()
    return out


def _markdown_only(text: str, page: str, index: Index, with_solutions: bool, glued: list[str]) -> str:
    """A directive's body: Markdown only (its glued names go to the enclosing cell's list)."""
    parts = _blocks(text, page, index, with_solutions, glued)
    if any(kind == "code" for kind, _ in parts):
        raise ConversionError("a literalinclude inside a directive has no Colab form: move it out")
    return "\n\n".join(t for _, t in parts)


def convert(text: str, page: str, index: Index, with_solutions: bool = True) -> list[tuple[str, str]]:
    """One Markdown cell of page ``page`` -> [("markdown" | "code", text), ...] in order."""
    merged: list[tuple[str, str]] = []
    for kind, part in _blocks(text, page, index, with_solutions):
        if kind == "markdown" and merged and merged[-1][0] == "markdown":
            merged[-1] = ("markdown", merged[-1][1].rstrip("\n") + "\n\n" + part.lstrip("\n"))
        else:
            merged.append((kind, part))
    return merged

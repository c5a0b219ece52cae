"""Write the book's chapters (book/*.ipynb, without outputs) from their sources in scripts/chapters/.

A source is plain text: cells start with a line ``%% md`` or ``%% code`` (optionally followed by
``tags=a,b``). The line ``%% setup`` inserts the standard first cell that makes a chapter run on
Colab (installs sclip_lib from the repository when it is missing, picks the GPU, shows the banner).

    python scripts/make_notebooks.py          # write book/*.ipynb
    python scripts/make_notebooks.py --check  # exit 1 if a notebook differs from its source
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "chapters"
BOOK = ROOT / "book"
REPO_URL = "https://github.com/sclip-book/sclip-book"

SETUP = f'''\
# Set-up: on Colab or a fresh machine, install sclip_lib from the repository; pick the GPU if any.
try:
    import sclip_lib
except ImportError:
    import subprocess, sys
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "sclip_lib[book] @ git+{REPO_URL}"])
    import sclip_lib

import sclip_lib as sl
from sclip_lib import book

cfg = book.setup()  # mode from $SCLIP_BOOK_MODE (real unless set to smoke), device, banner'''

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def parse(text: str) -> list:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        src = "\n".join(lines).strip("\n")
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        if line.startswith("%% "):
            flush()
            parts = line[3:].split()
            kind, tags, lines = parts[0], [], []
            for p in parts[1:]:
                if p.startswith("tags="):
                    tags = p[5:].split(",")
            if kind == "setup":
                kind, tags, lines = "code", ["hide-input"], SETUP.splitlines()
            elif kind not in ("md", "code"):
                raise ValueError(f"unknown cell kind {kind!r} in line {line!r}")
        else:
            lines.append(line)
    flush()
    for i, cell in enumerate(cells):  # stable ids keep diffs quiet
        cell["id"] = f"c{i:03d}"
    return cells


def notebook(src: Path):
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(src.read_text(encoding="utf-8"))
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    return nb


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for src in sorted(SOURCES.glob("*.txt")):
        out = BOOK / (src.stem + ".ipynb")
        text = nbformat.writes(notebook(src)) + "\n"
        if check:
            if not out.exists() or out.read_text(encoding="utf-8") != text:
                stale.append(out.name)
        else:
            out.write_text(text, encoding="utf-8")
    if stale:
        print("notebooks out of date with scripts/chapters/ (run python scripts/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

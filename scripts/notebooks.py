"""The chapters' two forms: MyST Markdown notebooks (book/*.md, the source) and their Colab copies (notebooks/*.ipynb).

Each chapter is paired by jupytext (``formats: book//md:myst,notebooks//ipynb`` in its header). Its first code
cell is the Colab set-up cell, defined once in notebooks/colab_setup.py with the repository URL taken from
_config.yml (``repository.url``).

    python scripts/notebooks.py          # write the set-up cells, then `jupytext --sync` every chapter
    python scripts/notebooks.py --check  # exit 1 if a pair has drifted, a set-up cell is stale or a copy has outputs
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
SETUP_TEMPLATE = NOTEBOOKS / "colab_setup.py"
PAIRING = "book//md:myst,notebooks//ipynb"


def repository_url() -> str:
    """The one place the repository URL is written: _config.yml's ``repository.url``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"].rstrip("/")


def setup_cell() -> str:
    return SETUP_TEMPLATE.read_text(encoding="utf-8").strip("\n").replace("{repository_url}", repository_url())


def chapters() -> list[Path]:
    """The MyST notebooks in book/ (Markdown pages without a jupytext header, like references.md, are not chapters)."""
    return [p for p in sorted(BOOK.glob("*.md")) if p.read_text(encoding="utf-8").startswith("---\njupytext:")]


def paired(md: Path) -> Path:
    return NOTEBOOKS / (md.stem + ".ipynb")


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


def problems() -> list[str]:
    """Everything that makes the committed pairs differ from what `python scripts/notebooks.py` writes."""
    found, setup = [], setup_cell()
    sources = chapters()
    for md in sources:
        nb = jupytext.read(md)
        if nb.metadata.get("jupytext", {}).get("formats") != PAIRING:
            found.append(f"{md.name}: its header must pair it with formats: {PAIRING}")
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or code[0].source != setup:
            found.append(f"{md.name}: the first code cell is not the set-up cell of {SETUP_TEMPLATE.name}")
        ipynb = paired(md)
        if not ipynb.exists():
            found.append(f"{ipynb.relative_to(ROOT)} is missing")
            continue
        copy = jupytext.read(ipynb)
        if _cells(copy) != _cells(nb):
            found.append(f"{ipynb.relative_to(ROOT)} differs from {md.relative_to(ROOT)}")
        if any(c.get("outputs") or c.get("execution_count") for c in copy.cells if c.cell_type == "code"):
            found.append(f"{ipynb.relative_to(ROOT)} holds outputs (commit notebooks without them)")
    orphans = {p.stem for p in NOTEBOOKS.glob("*.ipynb")} - {p.stem for p in sources}
    found += [f"notebooks/{name}.ipynb has no source book/{name}.md" for name in sorted(orphans)]
    clashes = sorted(p.name for p in BOOK.glob("*.ipynb"))
    found += [f"book/{name}: notebooks live in notebooks/, not beside their source" for name in clashes]
    return found


def write() -> None:
    """Bring the newest edit of each pair to both sides, then put the one set-up cell into every chapter."""
    sources = [str(p) for p in chapters()]
    jupytext_cli = [sys.executable, "-m", "jupytext", "--quiet"]
    subprocess.run([*jupytext_cli, "--sync", *sources], check=True, cwd=ROOT)
    setup = setup_cell()
    for md in chapters():
        nb = jupytext.read(md)
        first = next(c for c in nb.cells if c.cell_type == "code")
        if first.source != setup:
            first.source = setup
            jupytext.write(nb, md, fmt="md:myst")
    # the .md files are now the newest side: sync writes them into the .ipynb copies, keeping cell ids
    subprocess.run([*jupytext_cli, "--sync", *sources], check=True, cwd=ROOT)


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        write()
    found = problems()
    if found:
        print("chapters out of sync (run `make notebooks`):\n  " + "\n  ".join(found))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

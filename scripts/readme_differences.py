"""The README's "what still differs" lists, written from sclip_lib/evaluation/protocols.py (``DIFFERENCES``).

The lists sit between two marker comments in README.md's "Faithfulness" section; everything outside
them is left as it is.

    python scripts/readme_differences.py          # rewrite the lists from the protocols
    python scripts/readme_differences.py --check  # exit 1 if the README's lists differ from the protocols'
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- differences: generated from sclip_lib/evaluation/protocols.py by scripts/readme_differences.py -->"
END = "<!-- end of differences -->"


def split(text: str) -> tuple[str, str, str]:
    """(before, generated, after) of the README's text; a clear error if the markers are not there once each."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"error: README.md must hold the lines\n{BEGIN}\n{END}\nonce each, in that order")
    head, rest = text.split(BEGIN)
    body, tail = rest.split(END)
    return head, body, tail


def generated() -> str:
    sys.path.insert(0, str(ROOT))
    from sclip_lib.evaluation.protocols import differences_markdown

    return "\n" + differences_markdown()


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    head, body, tail = split(text)
    want = generated()
    if "--check" in argv:
        if body != want:
            print(
                "error: README.md's differences lists differ from sclip_lib/evaluation/protocols.py; "
                "run `python scripts/readme_differences.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    if body != want:  # written beside the README, then moved over it: never half a README
        fd, tmp = tempfile.mkstemp(dir=ROOT, prefix=".README.", suffix=".md")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(head + BEGIN + want + END + tail)
        os.chmod(tmp, README.stat().st_mode)
        os.replace(tmp, README)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

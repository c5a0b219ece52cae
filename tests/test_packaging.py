"""Packaging facts that must stay true: one version, a truthful Python floor."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import sclip_lib as sl

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_written_once_and_citation_agrees():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert sl.__version__ == declared, "reinstall the package (make setup) after changing pyproject.toml's version"
    citation = re.search(r"^version:\s*(\S+)", (ROOT / "CITATION.cff").read_text(), re.M).group(1)
    assert citation == declared, f"CITATION.cff says {citation}, pyproject.toml {declared}"


def test_requires_python_admits_the_running_interpreter_and_the_code_needs_it():
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = map(int, re.search(r">=\s*(\d+)\.(\d+)", floor).groups())
    assert sys.version_info[:2] >= (major, minor)
    # BaseException.add_note (3.11) is used by evaluate.py: the floor must not promise 3.10
    uses_add_note = any("add_note(" in p.read_text() for p in (ROOT / "sclip_lib").rglob("*.py"))
    assert not uses_add_note or (major, minor) >= (3, 11)

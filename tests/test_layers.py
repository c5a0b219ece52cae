"""The package's layers and its public surface: a light ``import sclip_lib``, the evaluation names on first
use, a ``Segmenter`` that fits one screen, and the CLI help built from the attention registry."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import sclip_lib as sl
from sclip_lib.cli import main
from tests.conftest import ONE_TEMPLATE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_sclip_lib_alone_needs_no_datasets_pandas_or_layers_above_the_core():
    loaded = _python(
        "import sys, sclip_lib\n"
        "above = ('sclip_lib.evaluation', 'sclip_lib.cli', 'sclip_lib.book', 'sclip_lib.testing')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('datasets', 'pandas') or m.startswith(above)))"
    )
    assert loaded == "[]"


def test_evaluation_names_load_on_first_use():
    out = _python(
        "import sys, sclip_lib as sl\n"
        "before = 'sclip_lib.evaluation' in sys.modules\n"
        "n = len(sl.BENCHMARKS)\n"
        "print(before, n, 'sclip_lib.evaluation' in sys.modules, sl.evaluate is sl.evaluation.evaluate, "
        "'evaluate' in dir(sl))"
    )
    assert out == "False 8 True True True"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        sl.no_such_name  # noqa: B018


def test_segmenter_public_surface_fits_one_screen(vit_b32):
    seg = sl.Segmenter(vit_b32, ["cat", "sofa, couch"], templates=ONE_TEMPLATE, background="wall")
    public = {name for name in dir(seg) if not name.startswith("_")}
    assert public == {
        "predict",
        "predict_many",
        "probabilities",
        "stages",
        "settings",
        "classes",
        "num_classes",
        "has_background",
        "attention",
        "model",
        "encoder",
        "device",
        "precision",
        "templates",
        "weights",
        "untrained",
        "protocol",
        "describe",
    }
    assert seg.classes.names == ["wall", "cat", "sofa"] and seg.classes.synonyms[2] == ("sofa", "couch")
    stages = {name for name in dir(seg.stages) if not name.startswith("_")}
    assert {
        "preprocess",
        "text_features",
        "window_logits",
        "merged_logits",
        "crop_logits",
        "mask_from_logits",
        "pamr_guide",
        "many",
    } <= stages


def test_cli_help_lists_what_the_registry_holds(capsys):
    name = "test_help_variant"
    sl.register_attention(name, keep_residual=False)(lambda q, k, v, ctx: v)
    try:
        for command in ("segment", "evaluate"):
            with pytest.raises(SystemExit):
                main([command, "--help"])
            text = " ".join(capsys.readouterr().out.split())
            for listed in [*sl.list_attentions(), *sl.list_modifiers()]:
                assert listed in text, (command, listed)
    finally:
        sl.ATTENTIONS._items.pop(name)


@pytest.mark.parametrize("module, expect", [("sclip_lib.cli", "segment"), ("sclip_lib.testing", "--root")])
def test_modules_run_as_commands(module, expect):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and expect in done.stdout, done.stderr


def test_the_core_contract_names_every_core_module():
    """A module added to the package root is core: the import-linter contract must cover it too."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(REPO) / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(c for c in config if c["name"].startswith("the core needs"))
    on_disk = {f"sclip_lib.{p.stem}" for p in (Path(REPO) / "sclip_lib").glob("*.py") if p.stem != "__init__"}
    assert set(core["source_modules"]) == on_disk

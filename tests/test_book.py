"""The book's shared set-up (sclip_lib/book/__init__.py) and its notebooks as committed (in sync, no outputs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sclip_lib import book

ROOT = Path(__file__).resolve().parents[1]


def test_mode_defaults_to_real_and_rejects_typos(monkeypatch):
    monkeypatch.delenv(book.MODE_ENV, raising=False)
    assert book.mode() == "real" and not book.is_smoke()
    monkeypatch.setenv(book.MODE_ENV, "Smoke")
    assert book.is_smoke()
    monkeypatch.setenv(book.MODE_ENV, "smok")
    with pytest.raises(ValueError, match="real.*smoke"):
        book.mode()


def test_smoke_marks_titles_banner_and_templates(monkeypatch):
    monkeypatch.setenv(book.MODE_ENV, "smoke")
    assert book.title("x").startswith("SMOKE MODE")
    assert "sclip-smoke-banner" in book.banner_html() and "NOT meaningful" in book.banner_html()
    assert len(book.templates()) == book.SMOKE_TEMPLATES
    monkeypatch.setenv(book.MODE_ENV, "real")
    assert book.title("x") == "x"
    assert "smoke" not in book.banner_html()
    assert len(book.templates()) == 80 and book.short_side() == 336


def test_check_fails_loudly_in_real_mode_and_says_so_in_smoke_mode(monkeypatch, capsys):
    monkeypatch.setenv(book.MODE_ENV, "real")
    assert book.check("vanilla beats nothing", True)
    assert "[checked on this build's numbers] vanilla beats nothing" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="contradict the text: SCLIP beats vanilla"):
        book.check("SCLIP beats vanilla", False)
    monkeypatch.setenv(book.MODE_ENV, "smoke")
    assert not book.check("SCLIP beats vanilla", False)  # untrained weights: never asserted
    assert "[smoke mode: check skipped" in capsys.readouterr().out
    monkeypatch.setenv(book.MODE_ENV, "real")
    monkeypatch.setenv(book.HUB_ENV, "local")  # real code paths, random weights: nothing to assert
    assert not book.check("SCLIP beats vanilla", False)
    assert "[local test hub: check skipped" in capsys.readouterr().out


def test_real_mode_never_falls_back(monkeypatch, tmp_path, offline):
    """Real mode asks load_clip for pretrained weights: offline that raises, it does not go untrained."""
    import sclip_lib as sl

    monkeypatch.setenv(book.MODE_ENV, "real")
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path))
    with pytest.raises(sl.WeightsError):
        book.load_model("ViT-B-32")


def test_spatial_invariance_extremes():
    L = 5
    same = torch.zeros(L, L)
    same[:, 2] = 1  # every query attends to token 2
    assert book.spatial_invariance(same) == pytest.approx(1.0)
    own = torch.eye(L)  # every query attends to itself only
    assert book.spatial_invariance(own[None].repeat(3, 1, 1)) == pytest.approx(0.0)


def test_sample_images_are_rgb_uint8_and_shrink():
    imgs = book.sample_images(["chelsea", "voc"], max_side=100)
    for img in imgs.values():
        assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) <= 100


def test_smoke_voc_folder_loads_as_a_benchmark(monkeypatch):
    import sclip_lib as sl

    monkeypatch.setenv(book.MODE_ENV, "smoke")
    data = sl.load_benchmark("voc21", limit=2, source=book.benchmark_source("voc21"))
    samples = list(data)
    assert samples and all(s.image.shape[:2] == s.mask.shape for s in samples)


def _notebooks_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import notebooks
    finally:
        sys.path.pop(0)
    return notebooks


def test_chapters_in_sync_with_their_colab_copies():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "notebooks.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sync_check_catches_drift_outputs_and_stale_setup_cells(tmp_path, monkeypatch):
    """The check fails on each kind of drift, on a copy of the real chapters and their Colab copies."""
    nbs = _notebooks_script()
    import shutil

    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_ext", "_static"))
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    for attr, sub in (("ROOT", ""), ("BOOK", "book"), ("NOTEBOOKS", "notebooks")):
        monkeypatch.setattr(nbs, attr, tmp_path / sub)
    monkeypatch.setattr(nbs, "SETUP_TEMPLATE", tmp_path / "notebooks" / "colab_setup.py")
    assert nbs.problems() == []

    copy = tmp_path / "notebooks" / "02_clip.ipynb"
    nb = json.loads(copy.read_text())
    nb["cells"][-1]["source"] += "\nan edit made only in Colab"
    copy.write_text(json.dumps(nb))
    student = tmp_path / "notebooks" / "student" / "04_csa.ipynb"
    nb = json.loads(student.read_text())
    next(c for c in nb["cells"] if c["cell_type"] == "code")["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "x"}
    ]
    student.write_text(json.dumps(nb))
    found = nbs.problems()
    assert any("notebooks/02_clip.ipynb differs" in f for f in found), found
    assert any("notebooks/student/04_csa.ipynb differs" in f for f in found), found

    chapter = tmp_path / "book" / "06_demo.md"
    chapter.write_text(
        chapter.read_text().replace("jupytext:\n", "jupytext:\n  formats: book//md:myst,notebooks//ipynb\n", 1)
    )
    assert any("06_demo.md: its header pairs it" in f for f in nbs.problems())

    (tmp_path / "_config.yml").write_text(
        (ROOT / "_config.yml").read_text().replace("github.com/", "github.com/a-fork-")
    )
    assert sum("not the set-up cell" in f for f in nbs.problems()) == len(nbs.chapters())

    (tmp_path / "book" / "02_clip.ipynb").write_text(copy.read_text())
    (tmp_path / "notebooks" / "student" / "99_gone.ipynb").write_text(copy.read_text())
    found = nbs.problems()
    assert any("book/02_clip.ipynb" in f for f in found) and any(
        "student/99_gone.ipynb has no source" in f for f in found
    ), found


def _chapters():
    return _notebooks_script().chapters()


def test_notebooks_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 9 and len(notebooks) == len(_chapters())
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, nb_path.name
        first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "pip" in "".join(first_code["source"]) and "book.setup()" in "".join(first_code["source"]), nb_path.name


def test_every_chapter_has_goals_time_and_summary():
    jupytext = pytest.importorskip("jupytext")
    for md in _chapters():
        text = "\n".join(c.source for c in jupytext.read(md).cells if c.cell_type == "markdown")
        assert "Learning goals" in text and "Time and hardware" in text, md.name
        assert "## Summary" in text, md.name


def test_toc_lists_every_chapter():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    chapters = _chapters()
    assert len(chapters) >= 9
    for md in chapters:
        assert f"book/{md.stem}" in files, md.name


def test_images_setting_overrides_the_chapter_counts(monkeypatch):
    monkeypatch.delenv(book.IMAGES_ENV, raising=False)
    assert book.image_count(100) == 100 and book.image_count(None) is None
    monkeypatch.setenv(book.IMAGES_ENV, "2")
    assert book.image_count(100) == 2 and book.image_count(None) == 2
    monkeypatch.setenv(book.IMAGES_ENV, "two")
    with pytest.raises(ValueError, match="positive number"):
        book.image_count(100)


def test_footer_and_banner_say_how_the_site_was_built(monkeypatch):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from mode_banner import footer_text
    finally:
        sys.path.pop(0)
    monkeypatch.setenv(book.MODE_ENV, "real")
    monkeypatch.delenv(book.IMAGES_ENV, raising=False)
    monkeypatch.delenv(book.HUB_ENV, raising=False)
    assert footer_text() == "Executed in real mode with each chapter's own benchmark image counts."
    assert "pretrained OpenAI CLIP weights" in book.banner_html()
    monkeypatch.setenv(book.IMAGES_ENV, "2")
    monkeypatch.setenv(book.HUB_ENV, "local")
    monkeypatch.setenv(book.TEMPLATES_ENV, "1")
    text = footer_text()
    assert "local test hub" in text and "SCLIP_BOOK_IMAGES=2" in text and "SCLIP_BOOK_TEMPLATES=1" in text
    banner = book.banner_html()
    assert "LOCAL TEST HUB" in banner and "pretrained" not in banner and "sclip-smoke-banner" not in banner


def sl_templates():
    from sclip_lib.text import OPENAI_IMAGENET_TEMPLATES

    return tuple(OPENAI_IMAGENET_TEMPLATES)


def test_templates_setting_caps_the_mode_templates(monkeypatch):
    monkeypatch.setenv(book.MODE_ENV, "real")
    monkeypatch.setenv(book.TEMPLATES_ENV, "1")
    assert book.templates() == sl_templates()[:1]
    assert "1 of the 80 prompt templates" in book.banner_html()
    cfg = book.BookConfig("real", torch.device("cpu"), book.templates(), 336)
    assert cfg.overrides == {"templates": book.templates()}  # real mode keeps each benchmark's short side
    monkeypatch.setenv(book.MODE_ENV, "smoke")
    monkeypatch.setenv(book.TEMPLATES_ENV, "5")
    assert len(book.templates()) == book.SMOKE_TEMPLATES  # a cap, never more than the mode's
    smoke = book.BookConfig("smoke", torch.device("cpu"), book.templates(), book.SMOKE_SHORT_SIDE)
    assert smoke.overrides["short_side"] == book.SMOKE_SHORT_SIDE
    monkeypatch.setenv(book.TEMPLATES_ENV, "0")
    with pytest.raises(ValueError, match="positive number"):
        book.templates()

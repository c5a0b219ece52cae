"""The book's shared set-up (sclip_lib/book.py) and its notebooks as committed (in sync, no outputs)."""

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


def test_real_mode_never_falls_back(monkeypatch, tmp_path):
    """Real mode asks load_clip for pretrained weights: offline that raises, it does not go untrained."""
    import sclip_lib as sl

    monkeypatch.setenv(book.MODE_ENV, "real")
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
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


def test_notebooks_in_sync_with_sources():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_notebooks_committed_without_outputs():
    notebooks = sorted((ROOT / "book").glob("*.ipynb"))
    assert len(notebooks) >= 9
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, nb_path.name
        first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "pip" in "".join(first_code["source"]) and "book.setup()" in "".join(first_code["source"]), nb_path.name


def test_every_chapter_has_goals_time_and_summary():
    for nb_path in sorted((ROOT / "book").glob("0*.ipynb")):
        text = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "markdown")
        assert "Learning goals" in text and "Time and hardware" in text, nb_path.name
        assert "## Summary" in text, nb_path.name


def test_toc_lists_every_chapter():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc["chapters"]]
    for nb_path in (ROOT / "book").glob("*.ipynb"):
        assert f"book/{nb_path.stem}" in files, nb_path.name

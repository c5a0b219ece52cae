"""`sclip segment`: the one-image demo, in smoke mode and with missing weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sclip_lib.cli import SMOKE_BANNER, main


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(path)
    return path


def test_segment_writes_mask_and_overlay_in_smoke_mode(photo, tmp_path, capsys):
    out, over = tmp_path / "mask.png", tmp_path / "overlay.png"
    code = main(
        [
            "segment",
            str(photo),
            "--classes",
            "cat; sofa, couch; remote control",
            "--out",
            str(out),
            "--overlay",
            str(over),
            "--model",
            "ViT-B-32",
            "--allow-untrained",
            "--templates",
            "1",
            "--short-side",
            "112",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert SMOKE_BANNER in captured.err
    mask = np.asarray(Image.open(out))
    assert mask.shape == (90, 120) and mask.max() <= 3  # background (stuff words) + 3 classes
    overlay = Image.open(over)
    assert overlay.size == (120, 90)
    assert np.asarray(overlay.convert("RGB"))[2, :60].mean(axis=0)[0] > 150  # the red smoke stamp


def test_missing_weights_say_what_to_do(photo, tmp_path, capsys, monkeypatch, offline):
    monkeypatch.delenv("SCLIP_CHECKPOINT_DIR", raising=False)
    code = main(["segment", str(photo), "--classes", "cat", "--model", "ViT-B-32", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "could not load ViT-B-32 / openai" in err and "SCLIP_CHECKPOINT_DIR" in err
    assert "--allow-untrained" in err


def test_unreadable_image_and_bad_classes(tmp_path, photo, capsys):
    assert main(["segment", str(tmp_path / "none.jpg"), "--classes", "cat", "--allow-untrained"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["segment", str(photo), "--classes", "cat;;dog", "--allow-untrained", "--model", "ViT-B-32"]) == 2
    assert "empty name" in capsys.readouterr().err

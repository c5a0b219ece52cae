"""`sclip segment` under bad input and faults: one `error:` line and exit 2 (130 on Ctrl-C), inputs never
overwritten, outputs checked before the model loads and written atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib import viz
from sclip_lib.cli import main
from tests.test_reliability_api import oriented_jpeg, stored_photo

FAST = ["--model", "ViT-B-32", "--allow-untrained", "--templates", "1", "--short-side", "64", "--device", "cpu"]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if the model starts loading: these errors must come before it."""
    monkeypatch.setattr(sl, "load_clip", lambda *a, **k: pytest.fail("the model must not load"))


@pytest.fixture
def fast_model(monkeypatch, vit_b32):
    monkeypatch.setattr(sl, "load_clip", lambda *a, **k: vit_b32)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_out_onto_the_input_is_refused_and_the_input_kept(photo, capsys, no_model):
    before = photo.read_bytes()
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(photo), *FAST]) == 2
    assert "is the input image" in one_error_line(capsys)
    assert photo.read_bytes() == before


def test_existing_outputs_need_overwrite(photo, tmp_path, capsys, fast_model):
    out, over = tmp_path / "mask.png", tmp_path / "over.jpg"
    out.write_bytes(b"mine")
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(out), *FAST]) == 2
    assert "exists already" in one_error_line(capsys) and out.read_bytes() == b"mine"
    over.write_bytes(b"mine too")
    assert main(["segment", str(photo), "--classes", "cat", "--overlay", str(over), *FAST]) == 2
    assert "--overwrite" in one_error_line(capsys)
    args = ["segment", str(photo), "--classes", "cat", "--out", str(out), "--overlay", str(over), "--overwrite", *FAST]
    assert main(args) == 0
    assert np.asarray(Image.open(out)).shape == (40, 50) and Image.open(over).format == "JPEG"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    "name, words",
    [
        ("missing/mask.png", "does not exist"),
        ("folder", "is a folder"),
        ("mask.jpg", "must end in .png"),
        ("mask", "no extension"),
    ],
)
def test_bad_out_paths_fail_before_the_model(photo, tmp_path, capsys, no_model, name, words):
    (tmp_path / "folder.png").mkdir()
    out = tmp_path / ("folder.png" if name == "folder" else name)
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(out), *FAST]) == 2
    assert words in one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_fails_before_the_model(photo, tmp_path, capsys, no_model):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(folder / "m.png"), *FAST]) == 2
    assert "not writable" in one_error_line(capsys)


@pytest.mark.parametrize("attention", ["sclipp", "sclip+rsc", "sclip+rcs+rcs"])
def test_unknown_attention_or_modifier_fails_before_the_model(photo, capsys, no_model, monkeypatch, attention):
    assert main(["segment", str(photo), "--classes", "cat", "--attention", attention, *FAST]) == 2
    line = one_error_line(capsys)
    assert f"unknown attention '{attention}'" in line
    assert "available: " in line or "modifiers from" in line  # it says what exists
    monkeypatch.setattr("sclip_lib.models.load_clip", lambda *a, **k: pytest.fail("the model must not load"))
    assert main(["evaluate", "--benchmark", "voc21", "--attention", attention, "--limit", "1"]) == 2
    assert f"unknown attention '{attention}'" in one_error_line(capsys)


@pytest.mark.parametrize("device", ["gpu", "cuda", "cuda:7"])
def test_devices_the_machine_lacks(photo, capsys, no_model, device):
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the GPU")
    args = ["segment", str(photo), "--classes", "cat", "--model", "ViT-B-32", "--allow-untrained", "--device", device]
    assert main(args) == 2
    assert "--device" in one_error_line(capsys)


def test_huge_image_says_how_to_allow_it(photo, capsys, no_model, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 40x50 = 2000 > 2 x 500: a "decompression bomb"
    assert main(["segment", str(photo), "--classes", "cat", *FAST]) == 2
    assert "--max-pixels" in one_error_line(capsys)
    assert Image.MAX_IMAGE_PIXELS == 500  # the limit is restored


def test_overlay_too_large_fails_before_the_model(photo, tmp_path, capsys, no_model, monkeypatch):
    monkeypatch.setattr(viz, "MAX_OVERLAY_PIXELS", 1000)
    assert main(["segment", str(photo), "--classes", "cat", "--overlay", str(tmp_path / "o.png"), *FAST]) == 2
    assert "overlay of a 50x40 image needs about" in one_error_line(capsys)


def test_thin_strip_says_what_minimum_applies(tmp_path, capsys, fast_model):
    strip = tmp_path / "strip.png"
    Image.fromarray(np.zeros((10, 5000, 3), np.uint8)).save(strip)
    assert main(["segment", str(strip), "--classes", "cat", *FAST[3:]]) == 2
    assert "too thin" in one_error_line(capsys)


@pytest.mark.parametrize("value", ["0", "-3", "81"])
def test_template_counts_outside_1_to_80(photo, capsys, no_model, value):
    try:
        code = main(
            [
                "segment",
                str(photo),
                "--classes",
                "cat",
                "--model",
                "ViT-B-32",
                "--allow-untrained",
                "--templates",
                value,
            ]
        )
    except SystemExit as stop:  # argparse's own exit
        code = stop.code
    assert code == 2 and "--templates" in one_error_line(capsys)


def test_explicit_checkpoint_wins_over_allow_untrained(photo, tmp_path, capsys):
    args = [
        "segment",
        str(photo),
        "--classes",
        "cat",
        "--model",
        "ViT-B-32",
        "--allow-untrained",
        "--pretrained",
        str(tmp_path / "finetune.pt"),
    ]
    assert main(args) == 2
    assert "finetune.pt" in one_error_line(capsys)


def test_ctrl_c_while_writing_leaves_no_half_file(photo, tmp_path, capsys, fast_model, monkeypatch):
    out = tmp_path / "mask.png"
    real_save = Image.Image.save

    def interrupted_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        if hasattr(fp, "truncate"):
            fp.truncate(813)  # what a write cut short leaves behind
        else:
            with open(fp, "r+b") as f:
                f.truncate(813)
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    assert main(["segment", str(photo), "--classes", "cat", "--out", str(out), *FAST]) == 130
    assert "interrupted" in one_error_line(capsys)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["photo.png"]


def test_unexpected_failure_is_one_line_not_a_traceback(photo, capsys, fast_model, monkeypatch):
    monkeypatch.setattr(sl.Segmenter, "predict", lambda self, image: (_ for _ in ()).throw(RuntimeError("boom")))
    assert main(["segment", str(photo), "--classes", "cat", *FAST]) == 2
    assert "RuntimeError: boom" in one_error_line(capsys)


def test_exif_rotated_photo_gets_a_mask_as_displayed(tmp_path, capsys, fast_model):
    path = tmp_path / "phone.jpg"
    path.write_bytes(oriented_jpeg(stored_photo()))
    out, over = tmp_path / "mask.png", tmp_path / "over.png"
    assert main(["segment", str(path), "--classes", "cat", "--out", str(out), "--overlay", str(over), *FAST]) == 0
    assert np.asarray(Image.open(out)).shape == (96, 64)  # stored 96 wide; displayed 64 wide, 96 high
    assert Image.open(over).size == (64, 96)

"""What a user reads when weights load: one true thing.

A checkpoint loaded by path (or from the checkpoint folder) must not be preceded by open_clip's "Model
initialized randomly" (the model is built empty, then filled); untrained weights must still say so.
"""

from __future__ import annotations

import logging
import sys

import open_clip
import pytest
import torch

import sclip_lib as sl

RANDOM = "initialized randomly"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record (pytest swaps it between test phases)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@pytest.fixture
def console(capsys):
    """A user's console: every log record at WARNING and above printed to stderr, which capsys reads."""
    handler = _StderrHandler()
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: capsys.readouterr().err
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vit_b32):
    path = tmp_path_factory.mktemp("ckpt-message") / "b32.bin"
    torch.save(vit_b32.state_dict(), path)
    return path


def test_checkpoint_by_path_says_only_that_it_was_loaded(checkpoint, console, caplog):
    with caplog.at_level(logging.INFO):
        model = sl.load_clip("ViT-B-32", checkpoint)
    shown = console()
    for text in (caplog.text, shown):
        assert RANDOM not in text and "No pretrained weights" not in text
        assert f"loaded ViT-B-32 weights from {checkpoint}" in text
        assert sl.weights_info(model).sha256 in text
    assert not sl.weights_info(model).untrained


def test_checkpoint_folder_says_only_that_it_was_loaded(tmp_path, monkeypatch, vit_b32, console, caplog):
    tag = "laion2b_s34b_b79k"
    path = tmp_path / "ViT-B-32" / tag / "open_clip_pytorch_model.bin"
    path.parent.mkdir(parents=True)
    torch.save(vit_b32.state_dict(), path)
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path))
    with caplog.at_level(logging.INFO):
        sl.load_clip("ViT-B-32", tag)
    shown = console()
    assert RANDOM not in caplog.text and RANDOM not in shown
    assert f"loaded ViT-B-32 weights from {path}" in shown


def test_a_checkpoint_that_fails_to_load_reports_only_the_failure(checkpoint, console, caplog):
    with caplog.at_level(logging.INFO), pytest.raises(sl.WeightsError, match="does not hold weights for ViT-B-16"):
        sl.load_clip("ViT-B-16", checkpoint)
    shown = console()
    assert RANDOM not in shown and "loaded ViT-B-16" not in shown and "loaded ViT-B-16" not in caplog.text


def test_untrained_weights_still_say_so(console, caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="UNTRAINED random weights"):
        model = sl.load_clip("ViT-B-32", pretrained=None, allow_untrained=True)
    assert RANDOM in caplog.text and RANDOM in console()
    assert sl.weights_info(model).untrained and "UNTRAINED" in sl.weights_info(model).describe()


def test_open_clip_warns_again_after_a_checkpoint_load(checkpoint, console, caplog):
    """The message is held back for the one create_model call that a load follows, not afterwards."""
    sl.load_clip("ViT-B-32", checkpoint)
    console()
    with caplog.at_level(logging.WARNING):
        open_clip.create_model("ViT-B-32", pretrained=None)
    assert RANDOM in caplog.text and RANDOM in console()
    assert all(not logging.getLogger(name).filters for name in ("", "open_clip", "open_clip.factory"))

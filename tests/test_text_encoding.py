"""Text embeddings: batched by prompts and cut to the prompt length, equal to open_clip's per-class
encoding; the on-disk cache returns what was computed and can be switched off."""

from __future__ import annotations

import open_clip
import pytest
import torch

import sclip_lib as sl
from sclip_lib import text

TEMPLATES = ("a photo of a {}.", "a bad photo of the {}, seen from far away in the dark.")
NAMES = ["cat", "remote control", "a very long name of a thing with many words in it", "x"]


def per_class_reference(model, names, templates):
    """open_clip's own zero-shot classifier, one class per call: the encoding before this change."""
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        return open_clip.build_zero_shot_classifier(model, tokenizer, names, templates, num_classes_per_batch=1).T


def test_batched_cut_encoding_equals_per_class_encoding(vit_b32):
    ref = per_class_reference(vit_b32, NAMES, TEMPLATES)
    for batch_size in (3, 256):  # batches of mixed and of equal prompt lengths
        sl.text._CACHE.pop(vit_b32, None)  # compute again, not from memory
        got = sl.text_embeddings(vit_b32, NAMES, TEMPLATES, cache=False, progress=False, batch_size=batch_size)
        assert got.shape == (len(NAMES), 512)
        torch.testing.assert_close(got, ref, atol=2e-6, rtol=0)
    sl.text._CACHE.pop(vit_b32, None)


def test_prompts_run_only_up_to_their_longest_token(vit_b32, monkeypatch):
    widths = []
    encode = text._encode

    def spy(model, tokens):
        widths.append(tokens.shape[-1])
        return encode(model, tokens)

    monkeypatch.setattr(text, "_encode", spy)
    sl.text_embeddings(vit_b32, ["cat", "dog"], ("a photo of a {}.",), cache=False, progress=False)
    sl.text._CACHE.pop(vit_b32, None)
    assert widths == [8]  # <start> a photo of a cat . <end>: 8 of the 77 positions


def test_disk_cache_returns_the_computed_embeddings(vit_b32, tmp_path, monkeypatch):
    monkeypatch.setenv("SCLIP_CACHE_DIR", str(tmp_path))
    sl.text._CACHE.pop(vit_b32, None)
    first = sl.text_embeddings(vit_b32, ["cat", "dog"], TEMPLATES, progress=False)
    files = list((tmp_path / "text-embeddings").rglob("*.npy"))
    assert len(files) == 2 and all(f.stat().st_mode & 0o777 == 0o644 for f in files)

    monkeypatch.setattr(text, "_encode", lambda *a: pytest.fail("cached names must not be encoded"))
    sl.text._CACHE.pop(vit_b32, None)  # as in a new process
    again = sl.text_embeddings(vit_b32, ["dog", "cat"], TEMPLATES, progress=False)
    assert torch.equal(again, first.flip(0))


def test_disk_cache_key_and_switch(vit_b32, tmp_path, monkeypatch):
    monkeypatch.setenv("SCLIP_CACHE_DIR", str(tmp_path))
    model = vit_b32
    sl.text._CACHE.pop(model, None)
    sl.text_embeddings(model, ["cat"], TEMPLATES, progress=False)
    sl.text_embeddings(model, ["cat"], TEMPLATES[:1], progress=False)  # other templates: another folder
    assert len(list((tmp_path / "text-embeddings").iterdir())) == 2
    monkeypatch.setenv("SCLIP_TEXT_CACHE", "0")
    assert text.TextCache.open(model, TEMPLATES, torch.device("cpu")) is None
    monkeypatch.delenv("SCLIP_TEXT_CACHE")
    monkeypatch.delenv("SCLIP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert text.cache_dir() == tmp_path / "xdg" / "sclip"
    monkeypatch.delattr(model, "sclip_weights")  # not from load_clip: its weights cannot be named
    assert text.TextCache.open(model, TEMPLATES, torch.device("cpu")) is None

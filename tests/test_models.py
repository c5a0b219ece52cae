"""load_clip: local checkpoints of every kind, the checkpoint folder, hashes, and clear failures."""

from __future__ import annotations

import logging

import open_clip
import pytest
import torch
from safetensors.torch import save_file

import sclip_lib as sl
from sclip_lib.models import _openai_file, find_local_checkpoint, sha256_of

# From the reference (the first part of OpenAI's download URL), typed here independently.
OPENAI_SHA = {
    "ViT-B-16": "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    "ViT-B-32": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
}


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, vit_b32):
    folder = tmp_path_factory.mktemp("ckpt")
    state = vit_b32.state_dict()
    torch.save(state, folder / "b32.bin")
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "b32.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / "b32_wrapped.pt")
    return folder


def test_openai_hashes_come_from_open_clip_and_match_the_reference():
    for name, sha in OPENAI_SHA.items():
        assert _openai_file(name) == (f"{name}.pt", sha)


@pytest.mark.parametrize("filename", ["b32.bin", "b32.safetensors", "b32_wrapped.pt"])
def test_local_state_dict_files_load_exactly(checkpoints, vit_b32, filename, caplog):
    path = checkpoints / filename
    with caplog.at_level(logging.WARNING, logger="sclip_lib.models"):
        model = sl.load_clip("ViT-B-32", path)
    info = sl.weights_info(model)
    assert same_weights(model, vit_b32)
    assert info.source == "file" and not info.untrained and info.sha256 == sha256_of(path)
    assert info.sha256 in caplog.text  # an explicit file logs its hash
    assert info.quick_gelu is False  # not an OpenAI file


def test_openai_torchscript_archive_loads_with_quickgelu(tmp_path):
    torch.manual_seed(3)
    scripted = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True, jit=True)
    path = tmp_path / "openai-style.pt"
    torch.jit.save(scripted, str(path))
    model = sl.load_clip("ViT-B-32", str(path))
    assert sl.weights_info(model).quick_gelu is True
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    expected = {k: v for k, v in scripted.state_dict().items()}
    got = model.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in got)


def test_checkpoint_for_another_model_is_a_clear_error(checkpoints):
    with pytest.raises(sl.WeightsError, match="does not hold weights for ViT-B-16"):
        sl.load_clip("ViT-B-16", checkpoints / "b32.bin")


def test_checkpoint_folder_by_tag(tmp_path, monkeypatch, vit_b32):
    tag = "laion2b_s34b_b79k"
    assert tag in open_clip.list_pretrained_tags_by_model("ViT-B-32")
    (tmp_path / "ViT-B-32" / tag).mkdir(parents=True)
    torch.save(vit_b32.state_dict(), tmp_path / "ViT-B-32" / tag / "open_clip_pytorch_model.bin")
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path))
    model = sl.load_clip("ViT-B-32", tag)
    assert sl.weights_info(model).source == "checkpoint-dir" and same_weights(model, vit_b32)


def test_official_name_with_wrong_hash_is_refused_but_loads_by_explicit_path(tmp_path, monkeypatch, vit_b32):
    torch.save(vit_b32.state_dict(), tmp_path / "ViT-B-32.pt")
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path))
    assert find_local_checkpoint("ViT-B-32", "openai") == tmp_path / "ViT-B-32.pt"
    with pytest.raises(sl.WeightsError, match=f"not {OPENAI_SHA['ViT-B-32']}.*pass it by path"):
        sl.load_clip("ViT-B-32", "openai")
    model = sl.load_clip("ViT-B-32", str(tmp_path / "ViT-B-32.pt"))  # a fine-tune, asked for by path
    assert same_weights(model, vit_b32)


def test_unreachable_hub_names_model_cause_and_fix(monkeypatch, tmp_path, offline):
    monkeypatch.delenv(sl.CHECKPOINT_DIR_ENV, raising=False)
    with pytest.raises(sl.WeightsError) as err:
        sl.load_clip("ViT-B-16", "openai", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "ViT-B-16 / openai" in msg and sl.CHECKPOINT_DIR_ENV in msg and "<dir>/ViT-B-16.pt" in msg


def test_untrained_needs_consent_and_is_reproducible():
    with pytest.raises(sl.WeightsError, match="allow_untrained=True"):
        sl.load_clip("ViT-B-32", pretrained=None)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        a = sl.load_clip("ViT-B-32", pretrained=None, allow_untrained=True)
    b = sl.load_clip("ViT-B-32", pretrained=None, allow_untrained=True)
    assert sl.weights_info(a).untrained and same_weights(a, b)


@pytest.mark.parametrize(
    "name,pretrained,error,match",
    [
        ("ViT-B-61", "openai", ValueError, "Did you mean: ViT-B-16"),
        ("ViT-B/16", "no_such_tag", sl.WeightsError, "no pretrained tag 'no_such_tag'.*openai"),
        ("ViT-B-16", "/no/such/file.pt", sl.WeightsError, "does not exist"),
    ],
)
def test_bad_names(name, pretrained, error, match):
    with pytest.raises(error, match=match):
        sl.load_clip(name, pretrained)


def test_checkpoint_dir_must_be_a_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(sl.CHECKPOINT_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(sl.WeightsError, match="is not a folder"):
        sl.load_clip("ViT-B-32", "openai")

"""The library as careful as the CLI: what can be checked is checked at construction, with the fix in the
message; no raw torch, Pillow or Python error escapes for the inputs a user is likely to pass."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib.images import as_image_tensor
from tests.conftest import ONE_TEMPLATE

SMALL = {"templates": ONE_TEMPLATE, "short_side": 64, "background": None}


def test_a_crop_smaller_than_a_patch_is_refused_at_construction(vit_b32):
    with pytest.raises(ValueError, match=r"crop 16 is smaller than the encoder's 32x32 patch.*crop >= 32"):
        sl.Segmenter(vit_b32, ["cat"], crop=16, stride=16, **SMALL)
    sl.Segmenter(vit_b32, ["cat"], crop=32, stride=16, **SMALL)  # one patch per window is enough
    sl.Segmenter(vit_b32, ["cat"], crop=16, stride=16, inference="whole", **SMALL)  # no windows: no crop


@pytest.mark.parametrize("template", ["{} {}", "a {} of {}", "{}{name}", "a photo of a {}. {"])
def test_templates_that_format_cannot_fill_are_a_value_error(vit_b32, template):
    with pytest.raises(ValueError, match="exactly one '{}'"):
        sl.Segmenter(vit_b32, ["cat"], templates=[template], **{k: v for k, v in SMALL.items() if k != "templates"})
    with pytest.raises(ValueError, match="exactly one '{}'"):
        sl.text_embeddings(vit_b32, ["cat"], [template], cache=False)


def test_escaped_braces_are_fine(vit_b32):
    sl.Segmenter(vit_b32, ["cat"], templates=["a {{photo}} of a {}."], short_side=64)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "gpu"])
def test_a_device_the_machine_lacks_is_refused_at_construction(vit_b32, device):
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the GPU")
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=f"device '?{device}'?"):
        sl.Segmenter(vit_b32, ["cat"], device=device, **SMALL)
    assert next(vit_b32.parameters()).device.type == "cpu"  # the model was not moved anywhere


def truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def test_a_lazily_opened_truncated_image_is_a_value_error(vit_b32, tmp_path):
    seg = sl.Segmenter(vit_b32, ["cat"], **SMALL)
    path = truncated_jpeg(tmp_path / "truncated.jpg")
    with pytest.raises(ValueError, match="truncated.jpg.*damaged or truncated.*LOAD_TRUNCATED_IMAGES"):
        seg.predict(Image.open(path))
    with pytest.raises(ValueError, match="damaged or truncated"):
        seg.probabilities(Image.open(path))


def test_pil_mode_La_is_accepted_like_LA(vit_b32):
    la = Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 30, 2), dtype=np.uint8), mode="LA")
    premultiplied = la.convert("La")
    assert premultiplied.mode == "La"
    expected = as_image_tensor(premultiplied.convert("LA"))
    assert torch.equal(as_image_tensor(premultiplied), expected) and expected.shape == (3, 24, 30)
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], **SMALL)
    assert seg.predict(premultiplied).shape == (24, 30)


@pytest.mark.parametrize("make", [lambda t: t.to_sparse(), lambda t: t.to_sparse(2)])
def test_a_sparse_tensor_is_a_clear_error(make):
    image = make(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="must be dense.*to_dense"):
        as_image_tensor(image)


@pytest.mark.parametrize("value, shown", [(1.0000001, "1.0000001"), (-1e-7, "-1e-07"), (1.5, "1.5")])
def test_range_messages_show_the_value_that_is_out_of_range(value, shown):
    with pytest.raises(ValueError, match=r"\[0, 1\]; got \[") as info:
        as_image_tensor(torch.full((3, 4, 4), value))
    assert shown in str(info.value)
    wide = Image.fromarray(np.full((4, 4), value, np.float32), mode="F")
    with pytest.raises(ValueError) as info:
        as_image_tensor(wide)
    assert shown in str(info.value)

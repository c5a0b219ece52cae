"""Bad input to the Python API fails at construction with the argument named; no silently wrong mask."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib import postprocess
from sclip_lib.images import as_image_tensor
from sclip_lib.stages import Stages
from tests.conftest import ONE_TEMPLATE
from tests.test_benchmark_loading import save

EXIF_ROTATE_90 = 6  # "rotate 90 CW to display": stored W x H shows as H x W


def oriented_jpeg(array: np.ndarray, orientation: int = EXIF_ROTATE_90) -> bytes:
    """JPEG bytes of ``array`` carrying an EXIF orientation tag."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", exif=exif.tobytes(), quality=100)
    return buf.getvalue()


def oriented(array: np.ndarray, orientation: int = EXIF_ROTATE_90) -> Image.Image:
    return Image.open(io.BytesIO(oriented_jpeg(array, orientation)))


def stored_photo() -> np.ndarray:
    """96 wide, 64 high, left half red: a viewer shows it 64 wide, 96 high, red on top."""
    arr = np.zeros((64, 96, 3), np.uint8)
    arr[:, :48] = (255, 0, 0)
    return arr


# -- construction-time checks ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"classes": None}, TypeError, "classes must be a list"),
        ({"classes": {"cat", "dog"}}, TypeError, "a set has no order"),
        ({"classes": [None]}, TypeError, r"classes\[0\]"),
        ({"classes": ["cat", 5]}, TypeError, r"classes\[1\]"),
        ({"logit_scale": "40"}, TypeError, "logit_scale must be a number"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
        ({"crop": (224, 224)}, TypeError, "crop must be an int"),
        ({"logit_scale": -40}, ValueError, "logit_scale must be a finite number > 0"),
        ({"logit_scale": 0}, ValueError, "logit_scale"),
        ({"logit_scale": math.nan}, ValueError, "logit_scale"),
        ({"logit_scale": math.inf}, ValueError, "logit_scale"),
        ({"stride": 300}, ValueError, "stride 300 is larger than crop 224"),
        ({"templates": ["a photo"]}, ValueError, "has no '{}'"),
        ({"templates": "a photo of a {}."}, TypeError, "templates must be a list"),
    ],
)
def test_bad_arguments_fail_at_construction(vit_b32, kwargs, error, words, monkeypatch):
    monkeypatch.setattr(Stages, "text_features", lambda self: pytest.fail("no compute before the checks"))
    kwargs = {"classes": ["cat", "dog"], "templates": ONE_TEMPLATE, **kwargs}
    with pytest.raises(error, match=words):
        sl.Segmenter(vit_b32, kwargs.pop("classes"), **kwargs)


def test_meaniou_checks_its_arguments():
    with pytest.raises(TypeError, match="num_classes must be an int"):
        sl.MeanIoU(2.5)
    with pytest.raises(TypeError, match="ignore_index"):
        sl.MeanIoU(3, ignore_index="255")


def test_stride_equal_to_crop_covers_everything(vit_b32):
    """The limit case of the stride check: no pixel is left without a window (no NaN logits)."""
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], templates=ONE_TEMPLATE, short_side=100, crop=64, stride=64)
    x = seg.stages.preprocess(torch.rand(3, 100, 150))[1]
    assert torch.isfinite(seg.stages.window_logits(x)).all()


def test_long_class_names_warn_with_the_tokens_kept(vit_b32):
    long_a = "a cat " * 40 + "on the left"
    long_b = "a cat " * 40 + "on the right"
    with pytest.warns(UserWarning, match=r"keeps the first 77") as record:
        sl.text_embeddings(vit_b32, [long_a, long_b, "dog"], ONE_TEMPLATE, cache=False, progress=False)
    messages = [str(w.message) for w in record if "keeps the first" in str(w.message)]
    assert len(messages) == 2 and "'a cat a cat" in messages[0]  # the classes are named, "dog" is not


# -- images --------------------------------------------------------------------------------------
def test_exif_orientation_is_applied_to_pil_images():
    img = oriented(stored_photo())
    assert img.size == (96, 64)  # stored
    t = as_image_tensor(img)
    assert t.shape == (3, 96, 64)  # displayed: 64 wide, 96 high
    assert t[0, :40].mean() > 0.9 and t[0, 56:].mean() < 0.1  # red on top, as a viewer shows it


def test_segmenter_mask_has_the_displayed_orientation(vit_b32):
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], templates=ONE_TEMPLATE, short_side=64)
    assert seg.predict(oriented(stored_photo())).shape == (96, 64)


def test_benchmark_local_folder_reads_images_upright(tmp_path):
    """A VOC-layout folder whose photo carries EXIF rotation and whose mask is drawn as displayed."""
    photo = tmp_path / "JPEGImages" / "2007_000001.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(oriented_jpeg(stored_photo()))
    mask = np.zeros((96, 64), np.uint8)
    mask[:48] = 1  # the top half as displayed
    save(tmp_path / "SegmentationClass" / "2007_000001.png", Image.fromarray(mask, mode="L"))
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")
    sample = next(iter(sl.load_benchmark("voc21", source=tmp_path)))
    assert sample.image.shape == (96, 64, 3) and sample.image[:40, :, 0].mean() > 230


@pytest.mark.parametrize("mode, scale", [("I;16", 65535), ("I", 65535)])
def test_wide_integer_images_are_scaled_not_clipped(mode, scale):
    values = np.full((8, 10), round(0.62 * scale), np.uint16 if mode == "I;16" else np.int32)
    img = Image.fromarray(values) if mode == "I;16" else Image.fromarray(values).convert("I")
    assert img.mode == mode
    t = as_image_tensor(img)
    assert t.shape == (3, 8, 10) and t.mean().item() == pytest.approx(0.62, abs=1e-4)


def test_float_images_in_unit_range_and_sixteen_bit_png_from_disk(tmp_path):
    f = Image.fromarray(np.full((4, 5), 0.25, np.float32), mode="F")
    assert as_image_tensor(f).mean().item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_image_tensor(Image.fromarray(np.full((4, 5), 200.0, np.float32), mode="F"))
    Image.fromarray(np.full((6, 7), 40000, np.uint16)).save(tmp_path / "deep.png")
    assert as_image_tensor(Image.open(tmp_path / "deep.png")).mean().item() == pytest.approx(40000 / 65535, abs=1e-5)


def test_too_thin_image_says_so_before_the_encoder(vit_b32, monkeypatch):
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], templates=ONE_TEMPLATE)
    monkeypatch.setattr(seg.encoder, "dense_features", lambda x: pytest.fail("the encoder must not run"))
    with pytest.raises(ValueError, match=r"5000x10.*too thin.*2048x4.*32x32 patch"):
        seg.predict(torch.rand(3, 10, 5000))


# -- probabilities --------------------------------------------------------------------------------
def test_probabilities_in_bands_and_in_half_precision(vit_b32, monkeypatch):
    seg = sl.Segmenter(vit_b32, ["cat", "sofa, couch", "dog"], templates=ONE_TEMPLATE, short_side=64)
    image = torch.rand(3, 90, 70)
    whole = seg.probabilities(image)
    assert whole.shape == (3, 90, 70) and whole.dtype == torch.float32
    seen = []
    original = postprocess.class_probabilities

    def spy(logits, *args):
        seen.append(tuple(logits.shape))
        return original(logits, *args)

    monkeypatch.setattr(postprocess, "class_probabilities", spy)
    monkeypatch.setattr(postprocess, "_BAND_ELEMENTS", 4 * 70 * 10)  # 10 rows of 4 queries per band
    banded = seg.probabilities(image)
    assert len(seen) == 9 and max(s[1] for s in seen) == 10  # never the whole (queries, H, W) at once
    torch.testing.assert_close(banded, whole, atol=1e-6, rtol=0)
    half = seg.probabilities(image, dtype=torch.float16)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), whole, atol=1e-3, rtol=0)
    assert (half.float().argmax(0) != whole.argmax(0)).float().mean() < 0.01


# -- checkpoints ------------------------------------------------------------------------------------
def test_damaged_checkpoints_say_download_again(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    full = tmp_path / "full.pt"
    torch.save({"w": torch.zeros(1000)}, full)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(full.read_bytes()[:813])
    assert zipfile.is_zipfile(full) and not zipfile.is_zipfile(cut)
    for path in (empty, noise, cut):
        with pytest.raises(sl.WeightsError, match="not a checkpoint or is damaged.*download it again"):
            sl.load_clip("ViT-B-32", str(path))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(sl.WeightsError, match="is a folder.*open_clip_pytorch_model.bin"):
        sl.load_clip("ViT-B-32", str(folder))
    with pytest.raises(sl.WeightsError, match="model name the checkpoint was trained with"):
        sl.load_clip("ViT-B-32", str(full))  # a real checkpoint file, of something else

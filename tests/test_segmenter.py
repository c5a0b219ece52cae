"""Segmenter: the pipeline against an independent one-window-at-a-time version, inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import sclip_lib as sl
from tests.conftest import ONE_TEMPLATE
from tests.test_pamr import reference_pamr

CLASSES = ["cat", "sofa, couch", "remote control"]


def reference_pipeline(seg: sl.Segmenter, image: np.ndarray):
    """Reference section 2, steps 1-10, written out with plain torch and one window at a time.

    Only the encoder (checked separately against the formulas) and the text features are reused.
    ``inference="whole"`` is one window over the whole resized image; PAMR (step 6) runs, as in the
    authors' code, on the normalised resized image bilinearly upsampled to the original size.
    """
    s = seg.settings
    rgb = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    H, W = rgb.shape[1:]
    scale = min(s.long_side / max(H, W), s.short_side / min(H, W))
    h, w = int(H * scale + 0.5), int(W * scale + 0.5)
    x = F.interpolate(rgb[None], size=(h, w), mode="bilinear", align_corners=False)
    mean = torch.tensor(s.mean or [0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor(s.std or [0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    x = (x - mean) / std
    text = seg.stages.text_features()
    canvas = torch.zeros(len(text), h, w)
    count = torch.zeros(h, w)
    whole = s.inference == "whole"
    crop = max(h, w) if whole else s.crop
    n_rows = 1 if whole else max(h - crop + s.stride - 1, 0) // s.stride + 1
    n_cols = 1 if whole else max(w - crop + s.stride - 1, 0) // s.stride + 1
    for r in range(n_rows):
        for c in range(n_cols):
            y1, x1 = r * s.stride, c * s.stride
            y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            with torch.no_grad():
                tokens = seg.encoder(x[:, :, y1:y2, x1:x2])[0, 1:]
            tokens = tokens / tokens.norm(dim=-1, keepdim=True)
            gh, gw = (y2 - y1) // 16, (x2 - x1) // 16
            logits = (tokens @ text.T).T.reshape(-1, gh, gw)
            canvas[:, y1:y2, x1:x2] += F.interpolate(logits[None], size=(y2 - y1, x2 - x1), mode="bilinear")[0]
            count[y1:y2, x1:x2] += 1
    logits = F.interpolate((canvas / count)[None], size=(H, W), mode="bilinear")[0]
    if s.pamr:
        guide = F.interpolate(x, size=(H, W), mode="bilinear")
        logits = reference_pamr(guide, logits[None], s.pamr_iterations, s.pamr_dilations)[0].float()
    probs = torch.softmax(logits * s.logit_scale, dim=0)
    q2c = [i for i, names in enumerate(seg.classes.synonyms) for _ in names]
    cls = torch.stack([probs[[j for j, c in enumerate(q2c) if c == i]].max(0).values for i in range(seg.num_classes)])
    class_probs = cls.clone()  # what probabilities() returns: before the thresholds
    if s.area_thd is not None:
        pred = cls.argmax(0)
        area = torch.tensor([(pred == i).sum() for i in range(seg.num_classes)]).float()
        fg = area[1:].sum()
        for i in range(1, seg.num_classes):
            if not area[i] > s.area_thd * fg:
                cls[i] = 0
    labels = cls.argmax(0)
    labels[cls.max(0).values < s.prob_thd] = 0
    return class_probs, labels


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    img = np.zeros((150, 230, 3), dtype=np.uint8)  # blocks of colour plus noise: varied logits
    img[:, :100] = (200, 40, 40)
    img[60:, 120:] = (30, 160, 60)
    return np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("attention", ["sclip", "naclip"])
def test_pipeline_matches_independent_reference(vit_b16, photo, attention):
    seg = sl.Segmenter(
        vit_b16,
        CLASSES,
        attention,
        background="sky, wall",
        templates=ONE_TEMPLATE,
        short_side=300,
        logit_scale=50,
        prob_thd=0.2,
        area_thd=0.1,
        batch_size=3,
    )
    ref_probs, ref_labels = reference_pipeline(seg, photo)
    probs = seg.probabilities(photo)
    labels = seg.predict(photo)
    assert probs.shape == (4, 150, 230) and labels.shape == (150, 230) and labels.dtype == torch.int64
    torch.testing.assert_close(probs, ref_probs, atol=1e-5, rtol=1e-4)
    assert (labels == ref_labels).float().mean() > 0.999  # float ties at most


@pytest.mark.parametrize(
    "attention,options",
    [
        ("naclip", {"inference": "whole", "pamr": True, "pamr_iterations": 3}),
        ("sclip", {"pamr": True, "pamr_iterations": 3, "pamr_dilations": (2, 5)}),
        (
            "maskclip",
            {"inference": "whole", "pos_resize": "size", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
        ),
    ],
    ids=["whole+pamr", "slide+pamr", "whole+imagenet-norm"],
)
def test_protocol_modes_match_independent_reference(vit_b16, photo, attention, options):
    seg = sl.Segmenter(
        vit_b16,
        CLASSES,
        attention,
        background="sky, wall",
        templates=ONE_TEMPLATE,
        short_side=200,
        logit_scale=50,
        prob_thd=0.2,
        **options,
    )
    ref_probs, ref_labels = reference_pipeline(seg, photo)
    torch.testing.assert_close(seg.probabilities(photo), ref_probs, atol=1e-5, rtol=1e-4)
    assert (seg.predict(photo) == ref_labels).float().mean() > 0.999


def test_whole_image_is_one_encoder_call_on_the_resized_image(vit_b32, photo):
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, short_side=200, inference="whole")
    shapes = []
    forward = seg.encoder.forward
    seg.encoder.forward = lambda x: shapes.append(tuple(x.shape)) or forward(x)
    seg.predict(photo)
    assert shapes == [(1, 3, 200, 307)]  # 150x230 resized to short side 200, no windows


def test_pamr_reads_the_network_image_unless_told_otherwise(vit_b32, photo):
    """The authors' PAMR guide (resized, normalised, upsampled) differs from the original image, so the
    refined scores differ between the two options; 'original' is the [0, 1] image itself."""
    common = dict(templates=ONE_TEMPLATE, short_side=64, pamr=True, pamr_dilations=(1, 2))
    net = sl.Segmenter(vit_b32, CLASSES, **common)
    orig = sl.Segmenter(vit_b32, CLASSES, pamr_image="original", **common)
    rgb, x = net.stages.preprocess(photo)
    assert x.shape[-2:] == (64, 98)
    torch.testing.assert_close(orig.stages.pamr_guide(rgb, x), rgb[None])
    torch.testing.assert_close(net.stages.pamr_guide(rgb, x), F.interpolate(x, size=(150, 230), mode="bilinear"))
    assert not torch.allclose(net.probabilities(photo), orig.probabilities(photo), atol=1e-4)


@pytest.mark.parametrize("field,value", [("inference", "tiles"), ("pamr_image", "rgb"), ("pos_resize", "linear")])
def test_unknown_modes_are_clear_errors(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        sl.Settings(**{field: value})


def test_windows_go_through_the_encoder_in_batches(vit_b32, photo):
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, short_side=300, batch_size=3)
    calls = []
    forward = seg.encoder.forward
    seg.encoder.forward = lambda x: calls.append(x.shape[0]) or forward(x)
    batched = seg.predict(photo)
    assert calls == [3, 3, 2]  # 8 windows (2 rows x 4 columns), 3 at a time
    seg.settings = sl.Settings(short_side=300, batch_size=1)
    calls.clear()
    one_by_one = seg.predict(photo)
    assert calls == [1] * 8
    assert (batched == one_by_one).float().mean() > 0.999


@pytest.mark.parametrize(
    "make",
    [
        lambda a: Image.fromarray(a),
        lambda a: Image.fromarray(a).convert("L"),
        lambda a: Image.fromarray(a).convert("RGBA"),
        lambda a: Image.fromarray(a).convert("P"),
        lambda a: Image.fromarray(a).convert("LA"),
        lambda a: Image.fromarray(a).convert("I;16"),
        lambda a: Image.fromarray(a).convert("CMYK"),
        lambda a: a,
        lambda a: a[..., 0],
        lambda a: np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2),
        lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255,
        lambda a: torch.from_numpy(a[..., :1]).permute(2, 0, 1).float() / 255,
    ],
    ids=[
        "PIL-RGB",
        "PIL-L",
        "PIL-RGBA",
        "PIL-P",
        "PIL-LA",
        "PIL-I16",
        "PIL-CMYK",
        "np-rgb",
        "np-gray",
        "np-rgba",
        "tensor",
        "tensor-gray",
    ],
)
def test_image_types(vit_b32, make):
    a = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, short_side=64)
    mask = seg.predict(make(a))
    assert mask.shape == (37, 53) and mask.dtype == torch.int64 and 0 <= mask.min() and mask.max() < 3


@pytest.mark.parametrize("size", [(5, 7), (40, 300), (1000, 90), (224, 224), (225, 223)])
def test_any_size_works_including_smaller_than_the_crop(vit_b32, size):
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, short_side=112)
    img = np.random.default_rng(2).integers(0, 256, (*size, 3), dtype=np.uint8)
    assert seg.predict(img).shape == size
    assert seg.probabilities(img).shape == (3, *size)


def test_pamr_option_runs_and_keeps_shapes(vit_b32):
    img = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, short_side=64, pamr=True)
    probs = seg.probabilities(img)
    assert seg.predict(img).shape == (60, 80) and probs.shape == (3, 60, 80)
    assert torch.isfinite(probs).all()


@pytest.mark.parametrize(
    "image,error,match",
    [
        (np.zeros((10, 10, 3), np.float32), ValueError, "uint8"),
        (np.zeros((10, 10, 2), np.uint8), ValueError, "shape"),
        (torch.zeros(10, 10, 3), ValueError, "channels first"),
        (torch.zeros(3, 10, 10, dtype=torch.uint8), ValueError, "float"),
        (torch.full((3, 10, 10), float("nan")), ValueError, "NaN"),
        (torch.full((3, 10, 10), 200.0), ValueError, r"\[0, 1\]"),
        (torch.zeros(3, 0, 10), ValueError, "empty"),
        ([[0, 1]], TypeError, "PIL image"),
    ],
)
def test_bad_images_are_clear_errors(vit_b32, image, error, match):
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE)
    with pytest.raises(error, match=match):
        seg.predict(image)


@pytest.mark.parametrize(
    "classes,kwargs,match",
    [
        ([], {}, "empty"),
        ("", {}, "empty name"),
        (["cat", " "], {}, "empty name"),
        (["cat", "sofa, cat"], {}, "used twice"),
        (["Cat", "cat"], {}, "used twice"),
        (["cat"], {"prob_thd": 0.1}, "background"),
        (["cat"], {"area_thd": 0.1}, "background"),
        (["cat"], {"crop": 0}, "crop"),
        (["cat"], {"prob_thd": 2}, "prob_thd"),
        (["cat"], {"precision": "int8"}, "precision"),
        (["cat"], {"templates": ()}, "templates"),
    ],
)
def test_bad_settings_are_clear_errors(vit_b32, classes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sl.Segmenter(vit_b32, classes, **kwargs)


def test_unknown_attention(vit_b32):
    with pytest.raises(KeyError, match="available: vanilla"):
        sl.Segmenter(vit_b32, CLASSES, attention="sclipp")


def test_class_strings_and_background(vit_b32):
    seg = sl.Segmenter(
        vit_b32, "cat; sofa, couch", background=sl.STUFF_BACKGROUND, templates=ONE_TEMPLATE, prob_thd=0.1
    )
    assert seg.num_classes == 3 and seg.classes.names == ["sky", "cat", "sofa"]
    assert seg.classes.query_to_class.tolist() == [0] * 26 + [1, 2, 2]


def test_untrained_weights_are_marked(vit_b32):
    with pytest.warns(UserWarning, match="UNTRAINED"):
        seg = sl.Segmenter(vit_b32, CLASSES)
    assert seg.untrained and seg.describe()["untrained"] is True
    assert "UNTRAINED" in seg.describe()["weights"]


def test_text_embeddings_are_computed_once_per_model(vit_b32, monkeypatch):
    import sclip_lib.text as text

    calls = []
    real = text.encode_queries
    monkeypatch.setattr(text, "encode_queries", lambda *a, **k: calls.append(list(a[2])) or real(*a, **k))
    templates = ("a picture of the {}.",)
    first = sl.Segmenter(vit_b32, ["zebra", "okapi"], templates=templates).stages.text_features()
    second = sl.Segmenter(vit_b32, ["okapi", "zebra, tapir"], "maskclip", templates=templates).stages.text_features()
    assert calls == [["zebra", "okapi"], ["tapir"]]  # only the new name is encoded
    torch.testing.assert_close(second[0], first[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_half_precision_autocast(vit_b32):
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, device="cuda")
    assert seg.precision == "fp16"
    img = np.random.default_rng(4).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    fp16 = seg.probabilities(img)
    ref = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, device="cuda", precision="fp32").probabilities(img)
    assert fp16.device.type == "cpu" and (fp16 - ref).abs().max() < 5e-2
    vit_b32.to("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_pamr_output_is_cast_to_half_before_the_softmax(vit_b32, monkeypatch):
    """SCLIP's forward_slide: ``self.pamr(img, logits).to(self.dtype)`` (fp16 on GPU), then scale and softmax."""
    img = np.random.default_rng(5).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    seg = sl.Segmenter(vit_b32, CLASSES, templates=ONE_TEMPLATE, device="cuda", short_side=64, pamr=True)
    seen = []
    from sclip_lib import postprocess

    real = postprocess.class_probabilities
    monkeypatch.setattr(
        postprocess, "class_probabilities", lambda logits, *a: seen.append(logits.dtype) or real(logits, *a)
    )
    probs = seg.probabilities(img)
    assert seen == [torch.float16] and probs.dtype == torch.float32
    rgb, x = seg.stages.preprocess(img)
    full = F.interpolate(seg.stages.window_logits(x)[None], size=(90, 120), mode="bilinear")
    refined = reference_pamr(F.interpolate(x, size=(90, 120), mode="bilinear"), full, 10, (8, 16))[0]
    expected = (refined.half() * seg.settings.logit_scale).softmax(0).float()
    q2c = seg.classes.query_to_class.tolist()
    expected = torch.stack([expected[[j for j, c in enumerate(q2c) if c == i]].max(0).values for i in range(3)])
    torch.testing.assert_close(probs, expected.cpu(), atol=2e-3, rtol=0)
    vit_b32.to("cpu")

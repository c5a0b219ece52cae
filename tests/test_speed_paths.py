"""The fast paths of predict, its post-processing and PAMR against reference copies of the previous code.

Each ``previous_*`` below is the arithmetic the library used before the speed work (issue 23), kept
verbatim so that the new path is compared with what it replaced, not with itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sclip_lib as sl
from sclip_lib.pamr import PAMR, _offsets, _shifted
from tests.conftest import ONE_TEMPLATE


# -- previous PAMR: all channels at once, neighbour by neighbour into a zeroed accumulator -----------
def previous_pamr(pamr: PAMR, image: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    alpha = pamr.affinity(image).to(scores.dtype)
    pad = max(pamr.dilations)
    offsets = _offsets(pamr.dilations)
    for _ in range(pamr.iterations):
        padded = F.pad(scores, [pad] * 4, mode="replicate")
        out = torch.zeros_like(scores)
        for p, (dy, dx) in enumerate(offsets):
            out.addcmul_(alpha[:, p : p + 1], _shifted(padded, dy, dx, pad))
        scores = out
    return scores


@pytest.mark.parametrize(
    "shape,iterations,dilations",
    [
        ((2, 9, 37, 53), 3, (8, 16)),
        ((1, 5, 224, 224), 2, (8, 16)),
        ((1, 3, 20, 31), 4, (1, 2, 5)),
        ((1, 1, 7, 5), 2, (8,)),
    ],
)
def test_pamr_is_bit_identical_to_the_previous_loop(shape, iterations, dilations):
    g = torch.Generator().manual_seed(sum(shape))
    image = torch.rand(shape[0], 3, *shape[2:], generator=g)
    scores = torch.randn(*shape, generator=g)
    pamr = PAMR(iterations, dilations)
    assert torch.equal(pamr(image, scores), previous_pamr(pamr, image, scores))


# -- previous merge and post-processing: every window upsampled into a canvas, softmax in bands -------
def previous_window_logits(seg: sl.Segmenter, x: torch.Tensor) -> torch.Tensor:
    s = seg.settings
    h, w = x.shape[-2:]
    windows = seg.stages.windows(h, w)
    canvas = torch.zeros(len(seg.stages.text_features()), h, w)
    count = torch.zeros(1, h, w)
    for start in range(0, len(windows), s.batch_size):
        batch = windows[start : start + s.batch_size]
        logits = seg.stages.crop_logits(torch.cat([x[..., y1:y2, x1:x2] for y1, y2, x1, x2 in batch]))
        y1, y2, x1, x2 = batch[0]
        size = (y2 - y1, x2 - x1)
        per_call = max(1, (1 << 24) // (logits.shape[1] * size[0] * size[1]))
        for first in range(0, len(batch), per_call):
            up = F.interpolate(logits[first : first + per_call], size=size, mode="bilinear")
            for (y1, y2, x1, x2), win in zip(batch[first : first + per_call], up):
                canvas[:, y1:y2, x1:x2] += win
                count[:, y1:y2, x1:x2] += 1
    return canvas / count


def previous_upsample_rows(logits, size, rows):
    (H, W), h = size, logits.shape[-2]
    if rows.start in (0, None) and rows.stop >= H:
        return F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    src = ((torch.arange(H, dtype=torch.float64) + 0.5) * (h / H) - 0.5).clamp(min=0)
    y0 = src.floor().long().clamp(max=h - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    wy = (src - y0).float()
    y0, y1, wy = y0[rows], y1[rows], wy[rows][:, None]
    band = logits[:, y0] * (1 - wy) + logits[:, y1] * wy
    return F.interpolate(band[None], size=(band.shape[1], W), mode="bilinear", align_corners=False)[0]


def previous_class_probabilities(logits, q2c, logit_scale):
    probs = (logits * logit_scale).softmax(dim=0)
    counts = torch.unique_consecutive(q2c, return_counts=True)[1].tolist()
    return torch.stack([group.amax(dim=0) for group in probs.split(counts)])


def previous_bands(height, per_row, band_elements):
    step = max(1, band_elements // max(per_row, 1))
    return [slice(start, min(start + step, height)) for start in range(0, height, step)]


def previous_probabilities(logits, size, q2c, logit_scale, band_elements=1 << 24):
    """The previous ``probability_map`` (float32): upsampled and scored a band of rows at a time."""
    out = torch.empty(int(q2c.max()) + 1, *size)
    for rows in previous_bands(size[0], logits.shape[0] * size[1], band_elements):
        band = logits[:, rows] if logits.shape[-2:] == size else previous_upsample_rows(logits, size, rows)
        out[:, rows] = previous_class_probabilities(band, q2c, logit_scale)
    return out


def previous_labels(probs: torch.Tensor, prob_thd: float, area_thd: float | None) -> torch.Tensor:
    """The previous ``predict_labels`` from the class probabilities: argmax, area_thd, prob_thd."""
    top, labels = probs.max(dim=0)
    if area_thd is not None:
        area = torch.bincount(labels.flatten(), minlength=probs.shape[0])[1:].float()
        keep = torch.cat([torch.ones(1), (area > area_thd * area.sum()).float()])
        if not bool(keep[1:][area > 0].all()):
            top, labels = (probs * keep[:, None, None]).max(dim=0)
    if prob_thd > 0:
        labels[top < prob_thd] = 0
    return labels


def previous_predict(seg: sl.Segmenter, image, band_elements=1 << 24):
    """The previous ``Segmenter.predict`` and ``probabilities`` (no PAMR here: PAMR is compared above)."""
    s = seg.settings
    rgb, x = seg.stages.preprocess(image)
    logits = previous_window_logits(seg, x)
    q2c = seg.classes.query_to_class
    probs = previous_probabilities(logits, tuple(rgb.shape[-2:]), q2c, s.logit_scale, band_elements)
    return probs, previous_labels(probs, s.prob_thd, s.area_thd)


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, : width // 2] = (200, 40, 40)
    img[height // 3 :, width // 2 :] = (30, 160, 60)
    return np.clip(img + rng.integers(0, 60, img.shape), 0, 255).astype(np.uint8)


CASES = {  # settings of the benchmarks' kinds: thresholds with a background of many words, synonyms, none
    "voc21-like": dict(background="sky, wall, tree, grass, road", prob_thd=0.1, area_thd=0.1, logit_scale=65),
    "context60-like": dict(background="background", prob_thd=0.1, logit_scale=50),
    "plain": dict(logit_scale=40),
    "whole": dict(logit_scale=40, inference="whole"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [(150, 230), (90, 300), (61, 47)], ids=["landscape", "wide", "below-crop"])
def test_predict_and_probabilities_equal_the_previous_path(vit_b16, case, size):
    options = dict(CASES[case])
    seg = sl.Segmenter(
        vit_b16,
        ["cat", "sofa, couch", "remote control", "floor, ground", "lamp"],
        "sclip",
        templates=ONE_TEMPLATE,
        short_side=130,
        crop=64,
        stride=32,
        **options,
    )
    image = _photo(*size, seed=size[0])
    probs, labels = previous_predict(seg, image)
    assert torch.equal(seg.predict(image), labels)
    torch.testing.assert_close(seg.probabilities(image), probs, atol=1e-6, rtol=1e-5)


def test_banded_post_processing_equals_the_previous_path(vit_b16, monkeypatch):
    from sclip_lib import postprocess

    seg = sl.Segmenter(
        vit_b16,
        ["cat", "sofa, couch", "lamp"],
        background="sky, wall",
        templates=ONE_TEMPLATE,
        short_side=100,
        crop=64,
        stride=32,
        prob_thd=0.2,
        area_thd=0.1,
    )
    image = _photo(120, 170, seed=3)
    monkeypatch.setattr(postprocess, "_BAND_ELEMENTS", 6 * 170 * 7)  # 7 rows of the 6 queries per band
    probs, labels = previous_predict(seg, image, band_elements=6 * 170 * 7)
    assert torch.equal(seg.predict(image), labels)
    torch.testing.assert_close(seg.probabilities(image), probs, atol=1e-6, rtol=1e-5)


def test_pamr_pipeline_equals_the_previous_path(vit_b16):
    seg = sl.Segmenter(
        vit_b16,
        ["cat", "sofa, couch", "lamp"],
        templates=ONE_TEMPLATE,
        short_side=100,
        crop=64,
        stride=32,
        pamr=True,
        pamr_iterations=3,
    )
    image = _photo(110, 150, seed=4)
    rgb, x = seg.stages.preprocess(image)
    full = F.interpolate(previous_window_logits(seg, x)[None], size=(110, 150), mode="bilinear", align_corners=False)
    refined = previous_pamr(PAMR(3, (8, 16)), F.interpolate(x, size=(110, 150), mode="bilinear"), full)[0]
    probs = previous_probabilities(refined, (110, 150), seg.classes.query_to_class, seg.settings.logit_scale)
    assert torch.equal(seg.predict(image), probs.argmax(0))
    torch.testing.assert_close(seg.probabilities(image), probs, atol=1e-6, rtol=1e-5)


def test_merged_logits_equal_the_canvas_at_every_size():
    from sclip_lib.merge import MergedLogits

    g = torch.Generator().manual_seed(0)
    for (h, w), (H, W), crop, stride in [
        ((448, 597), (480, 640), 224, 112),
        ((70, 50), (70, 50), 64, 32),
        ((100, 233), (41, 500), 48, 16),
    ]:
        windows = sl.sliding_windows(h, w, crop, stride)
        ch, cw = windows[0][1] - windows[0][0], windows[0][3] - windows[0][2]
        logits = torch.randn(len(windows), 5, ch // 16, cw // 16, generator=g)
        canvas, count = torch.zeros(5, h, w), torch.zeros(1, h, w)
        for (y1, y2, x1, x2), win in zip(windows, F.interpolate(logits, size=(ch, cw), mode="bilinear")):
            canvas[:, y1:y2, x1:x2] += win
            count[:, y1:y2, x1:x2] += 1
        merged = MergedLogits(windows, (h, w))
        merged.add(windows[::2], logits[::2])  # any order, any batches
        merged.add(windows[1::2], logits[1::2])
        torch.testing.assert_close(merged.resized(), canvas / count, atol=1e-6, rtol=1e-5)
        full = F.interpolate((canvas / count)[None], size=(H, W), mode="bilinear", align_corners=False)[0]
        torch.testing.assert_close(merged.full((H, W)), full, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(merged.band((H, W), slice(3, 9)), full[:, 3:9], atol=1e-6, rtol=1e-5)


def test_merged_logits_refuse_what_is_not_a_window_grid():
    from sclip_lib.merge import MergedLogits

    with pytest.raises(ValueError, match="sliding windows"):
        MergedLogits([(0, 4, 0, 4), (2, 6, 2, 6)], (6, 6))  # a diagonal pair: 2 row spans x 2 column spans != 2
    merged = MergedLogits([(0, 4, 0, 4), (0, 4, 2, 6)], (4, 6))
    merged.add([(0, 4, 0, 4)], torch.zeros(1, 2, 1, 1))
    with pytest.raises(RuntimeError, match="1 of 2 windows"):
        merged.resized()


def test_argmax_of_logits_equals_argmax_of_class_probabilities_with_ties():
    from sclip_lib.postprocess import class_probabilities, predict_labels

    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 40, 50, generator=g).mul(0.1)
    logits[3, :10] = logits[1, :10]  # exact ties between classes: the lower class wins, as in the argmax
    logits[5, 10:20] = logits[6, 10:20]  # and between synonyms of one class
    q2c = torch.tensor([0, 1, 1, 2, 3, 4, 4])
    for scale in (40.0, 65.0):
        want = class_probabilities(logits, q2c, scale).argmax(0)
        assert torch.equal(predict_labels(logits, (40, 50), q2c, scale), want)
    assert torch.equal(
        predict_labels(logits.half(), (40, 50), q2c, 40.0),  # fp16: scored in fp16, not shortcut
        class_probabilities(logits.half(), q2c, 40.0).argmax(0),
    )


def test_sfr_first_pass_is_bit_identical_to_the_previous_code(vit_b16):
    seg = sl.Segmenter(
        vit_b16,
        [f"thing {i}" for i in range(9)],
        "sclip+rcs+sfr",
        templates=ONE_TEMPLATE,
        crop=64,
        stride=32,
        short_side=96,
    )
    g = torch.Generator().manual_seed(8)
    features, windows = torch.randn(3, 512, 4, 4, generator=g), torch.randn(3, 3, 64, 64, generator=g)
    prior = seg.stages.coarse_segmentation(features, windows)
    # previous create_logit_temp, one window at a time on a CPU: upsample, PAMR, scale, softmax, top query
    probs = []
    for feats, pixels in zip(features.split(1), windows.split(1)):
        logits = torch.einsum("bchw,qc->bqhw", feats, seg.stages.text_features())
        logits = F.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
        probs.append((previous_pamr(PAMR(10, (8, 16)), pixels, logits) * seg.settings.logit_scale).softmax(dim=1))
    probs = torch.cat(probs)
    top, index = probs.max(dim=1)
    assert torch.equal(prior.top_query, index) and torch.equal(prior.confidence, top)


def test_resclip_predict_equals_the_previous_path(vit_b16):
    seg = sl.Segmenter(
        vit_b16,
        [f"thing {i}" for i in range(12)],
        "naclip+rcs+sfr",
        background="sky, wall",
        templates=ONE_TEMPLATE,
        short_side=100,
        crop=64,
        stride=32,
        prob_thd=0.1,
    )
    image = _photo(100, 140, seed=9)
    probs, labels = previous_predict(seg, image)
    assert torch.equal(seg.predict(image), labels)
    torch.testing.assert_close(seg.probabilities(image), probs, atol=1e-6, rtol=1e-5)

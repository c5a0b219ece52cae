"""``Segmenter.predict_many``: windows of consecutive images share encoder batches, masks equal ``predict``'s."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sclip_lib as sl
from tests.conftest import ONE_TEMPLATE

# short side 48 < crop 64: windows of 48x48, 48x64 and 64x48 (one size per image), so batches must break
SIZES = [(48, 48), (48, 100), (30, 50), (48, 70), (48, 130), (100, 48), (50, 50)]


def segmenter(model, **kw):
    return sl.Segmenter(
        model,
        ["cat", "dog, puppy", "sky"],
        templates=ONE_TEMPLATE,
        background="wall, floor",
        short_side=48,
        crop=64,
        stride=32,
        batch_size=3,
        area_thd=0.1,
        **kw,
    )


def record_batches(seg) -> list[tuple]:
    shapes = []
    inner = seg.encoder.dense_features

    def recorded(crops):
        shapes.append(tuple(crops.shape))
        return inner(crops)

    seg.encoder.dense_features = recorded  # this instance only
    return shapes


def test_packed_masks_equal_per_image_masks_exactly(vit_b32):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]
    seg = segmenter(vit_b32)
    expected = [seg.predict(im) for im in images]
    shapes = record_batches(seg)
    got = list(seg.predict_many(enumerate(images), lambda item: item[1]))
    assert [item[0] for item, _ in got] == list(range(len(images)))  # input order, items passed through
    for (_, mask), want in zip(got, expected):
        assert mask.dtype == torch.int64 and torch.equal(mask, want)

    # the batches: consecutive windows of one size, full (3) except where the size changes or at the end
    windows, per_image_calls = [], 0
    for im in images:
        x = seg.stages.preprocess(im)[1]
        own = [(y2 - y1, x2 - x1) for y1, y2, x1, x2 in sl.sliding_windows(*x.shape[-2:], 64, 32)]
        windows += own
        per_image_calls += -(-len(own) // 3)
    assert sum(s[0] for s in shapes) == len(windows)
    start = 0
    for i, (n, _, h, w) in enumerate(shapes):
        run = windows[start : start + n]
        assert set(run) == {(h, w)}
        following = windows[start + n : start + n + 1]
        assert n == 3 or following != [(h, w)], f"batch {i} of {n} windows is not full"
        start += n
    assert len(shapes) < per_image_calls


def test_packed_with_pamr_and_threads_and_an_empty_input(vit_b32):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 48 + 16 * i, 3), dtype=np.uint8) for i in range(4)]
    seg = segmenter(vit_b32, pamr=True, pamr_iterations=2)
    expected = [seg.predict(im) for im in images]
    for prefetch in (0, 2):
        got = [mask for _, mask in seg.predict_many(images, prefetch=prefetch)]
        assert all(torch.equal(a, b) for a, b in zip(got, expected)) and len(got) == len(images)
    assert list(seg.predict_many([])) == []


def test_bad_images_and_passed_items_keep_their_place(vit_b32):
    rng = np.random.default_rng(2)
    good = [rng.integers(0, 256, (48, 60, 3), dtype=np.uint8) for _ in range(2)]
    thin = rng.integers(0, 256, (2, 4000, 3), dtype=np.uint8)  # too thin after resizing: a ValueError
    seg = segmenter(vit_b32)
    items = [good[0], None, thin, good[1]]
    got = list(seg.predict_many(items, errors=(ValueError,)))
    assert [item is want for (item, _), want in zip(got, items)] == [True] * 4
    assert torch.equal(got[0][1], seg.predict(good[0])) and torch.equal(got[3][1], seg.predict(good[1]))
    assert got[1][1] is None and isinstance(got[2][1], ValueError)
    with pytest.raises(ValueError):  # not asked to pass errors on: the iteration stops
        list(seg.predict_many([thin]))

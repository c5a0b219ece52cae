"""Sliding-window geometry, checked against the reference's formulas and by coverage."""

from __future__ import annotations

import pytest
import torch

from sclip_lib.windows import sliding_windows, window_count


@pytest.mark.parametrize(
    "size,expected",
    # max(H - 224 + 112 - 1, 0) // 112 + 1, worked by hand
    [(224, 1), (225, 2), (336, 2), (337, 3), (448, 3), (500, 4), (2048, 18), (100, 1), (1, 1)],
)
def test_window_count_formula(size, expected):
    assert window_count(size, 224, 112) == expected


def test_positions_on_a_336x500_image():
    wins = sliding_windows(336, 500, 224, 112)
    ys = sorted({(y1, y2) for y1, y2, _, _ in wins})
    xs = sorted({(x1, x2) for _, _, x1, x2 in wins})
    assert ys == [(0, 224), (112, 336)]
    assert xs == [(0, 224), (112, 336), (224, 448), (276, 500)]  # last window snapped back to the border
    assert len(wins) == 8
    assert wins[:4] == [(0, 224, 0, 224), (0, 224, 112, 336), (0, 224, 224, 448), (0, 224, 276, 500)]


@pytest.mark.parametrize("h,w", [(336, 500), (448, 597), (224, 224), (100, 700), (50, 60), (225, 1000), (1, 1)])
def test_windows_cover_every_pixel_inside_the_image_with_one_size(h, w):
    wins = sliding_windows(h, w, 224, 112)
    cover = torch.zeros(h, w, dtype=torch.int32)
    sizes = set()
    for y1, y2, x1, x2 in wins:
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
        cover[y1:y2, x1:x2] += 1
        sizes.add((y2 - y1, x2 - x1))
    assert cover.min() >= 1
    assert sizes == {(min(h, 224), min(w, 224))}  # smaller than the crop: the whole axis


def test_rectangular_crop_and_stride():
    wins = sliding_windows(300, 300, (200, 100), (100, 50))
    assert {(y2 - y1, x2 - x1) for y1, y2, x1, x2 in wins} == {(200, 100)}
    assert len(wins) == window_count(300, 200, 100) * window_count(300, 100, 50) == 2 * 5


def test_bad_geometry_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(0, 10)
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(10, 10, 224, 0)

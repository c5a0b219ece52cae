"""The ground-truth localisation measure: known answers by hand and on a real VOC mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib.localisation import IGNORE_INDEX, patch_segments, segment_attention_share

from .conftest import shared_data

# 4 patches in a row: two of segment 0, one of segment 1, one unlabelled
SEGMENTS = torch.tensor([[0, 0, 1, IGNORE_INDEX]])
# patch-to-patch attention of the queries, rows summing to 1 (query 3 is ignored: its row is arbitrary)
PATCH_ROWS = torch.tensor(
    [
        [0.50, 0.25, 0.25, 0.00],  # own segment {0, 1}: 0.75
        [0.10, 0.10, 0.40, 0.40],  # own segment {0, 1}: 0.20
        [0.25, 0.25, 0.25, 0.25],  # own segment {2}:    0.25
        [0.00, 0.00, 0.00, 1.00],
    ],
    dtype=torch.float64,
)


def with_cls(patch_rows: torch.Tensor, cls_mass: float, scale: float) -> torch.Tensor:
    """An (L, L) matrix with a CLS row and column: each patch row scaled and given ``cls_mass`` on CLS."""
    n = patch_rows.shape[0]
    a = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    a[0] = 1.0 / (n + 1)
    a[1:, 0] = cls_mass
    a[1:, 1:] = patch_rows * scale
    return a


def test_hand_built_matrix():
    a = with_cls(PATCH_ROWS, cls_mass=0.7, scale=1.3)  # CLS mass and row scale must not matter
    heads = torch.stack([a + 0.05 * torch.eye(5, dtype=a.dtype), a - 0.05 * torch.eye(5, dtype=a.dtype)])
    s = segment_attention_share(heads[None], SEGMENTS)
    assert s.queries == 3
    assert s.share == pytest.approx((0.75 + 0.20 + 0.25) / 3, abs=1e-12)
    assert s.uniform == pytest.approx((2 / 4 + 2 / 4 + 1 / 4) / 3, abs=1e-12)
    assert s.lift == pytest.approx(0.4 / (1.25 / 3), abs=1e-12)


def test_hand_built_matrix_without_self_attention():
    a = with_cls(PATCH_ROWS, cls_mass=0.7, scale=1.3)
    heads = torch.stack([a + 0.05 * torch.eye(5, dtype=a.dtype), a - 0.05 * torch.eye(5, dtype=a.dtype)])
    s = segment_attention_share(heads, SEGMENTS, exclude_self=True)
    # rows without the diagonal: q0 (., .25, .25, 0) -> .25/.5; q1 (.1, ., .4, .4) -> .1/.9; q2 (.25, .25, ., .25) -> 0
    assert s.share == pytest.approx((0.5 + 1 / 9 + 0) / 3, abs=1e-12)
    assert s.uniform == pytest.approx((1 / 3 + 1 / 3 + 0) / 3, abs=1e-12)  # (|S| - 1) / (N - 1)
    with pytest.raises(ValueError, match="other patch"):
        segment_attention_share(torch.eye(5), SEGMENTS, exclude_self=True)
    ones = segment_attention_share(torch.ones(5, 5), SEGMENTS, exclude_self=True)
    assert ones.share == pytest.approx(ones.uniform, abs=1e-12)


def test_identity_attention_scores_one():
    s = segment_attention_share(torch.eye(5), SEGMENTS)
    assert s.share == 1.0 and s.uniform < 1


def test_uniform_attention_scores_the_area_baseline_exactly():
    segments = torch.tensor([[0, 0, 0], [1, 1, 2], [IGNORE_INDEX, 2, 2]])
    s = segment_attention_share(torch.ones(2, 10, 10), segments)
    # queries: three of segment 0 (3/9 each), two of 1 (2/9), three of 2 (3/9); the ignore patch is no query
    expected = (3 * 3 / 9 + 2 * 2 / 9 + 3 * 3 / 9) / 8
    assert s.queries == 8
    assert s.uniform == pytest.approx(expected, abs=1e-12) and s.share == pytest.approx(expected, abs=1e-12)


def test_batches_and_per_image_segments():
    a = torch.stack([torch.eye(5), torch.full((5, 5), 0.2)])[:, None]  # (2, 1, 5, 5): identity, then uniform
    seg = torch.stack([SEGMENTS, torch.tensor([[0, 1, 1, 1]])])
    s = segment_attention_share(a, seg)
    # image 1 (identity): 3 queries at 1; image 2 (uniform): 1/4 once, 3/4 three times
    assert s.queries == 7
    assert s.share == pytest.approx((3 * 1 + 0.25 + 3 * 0.75) / 7, abs=1e-7)


def test_sclip_rows_summing_to_two_are_renormalised(vit_b32):
    images = torch.randn(1, 3, 224, 224)
    enc = sl.DenseEncoder(vit_b32, "sclip")
    a = enc.attention_maps(images)
    seg = torch.arange(49).reshape(7, 7) % 3
    assert segment_attention_share(a, seg).share == pytest.approx(segment_attention_share(a / 2, seg).share, abs=1e-9)


@pytest.mark.parametrize(
    "attn,segments,match",
    [
        (torch.eye(5), torch.zeros(2, 3), "CLS \\+ 4 patches.*6 patches"),
        (torch.ones(2, 3, 4), torch.zeros(1, 3), "must be \\(B, heads, L, L\\)"),
        (torch.eye(5), torch.full((1, 4), IGNORE_INDEX), "no query"),
        (torch.eye(5)[:, [0, 0, 0, 0, 0]], torch.zeros(1, 4), "all on CLS"),
    ],
)
def test_bad_inputs_are_clear_errors(attn, segments, match):
    with pytest.raises(ValueError, match=match):
        segment_attention_share(attn, segments)


def test_patch_majority_vote_by_hand():
    mask = np.array(
        [
            [1, 1, 2, 2],
            [1, 2, 2, 2],
            [3, 3, 255, 255],
            [3, 4, 255, 5],
        ]
    )
    # 2x2 patches: {1,1,1,2} -> 1; {2,2,2,2} -> 2; {3,3,3,4} -> 3; {255,255,255,5} -> ignore
    assert patch_segments(mask, (2, 2)).tolist() == [[1, 2], [3, IGNORE_INDEX]]
    tie = np.array([[1, 2], [1, 2]])  # {1, 1, 2, 2}: half is no majority
    assert patch_segments(tie, (1, 1)).tolist() == [[IGNORE_INDEX]]
    assert patch_segments(tie, (1, 1), min_share=0.5).tolist() == [[IGNORE_INDEX]]
    assert patch_segments(np.array([[1, 1], [1, 2]]), (1, 1), min_share=0.75).tolist() == [[IGNORE_INDEX]]
    assert patch_segments(np.array([[1, 1], [1, 2]]), (1, 1), min_share=0.7).tolist() == [[1]]
    assert patch_segments(mask, (4, 4)).tolist() == mask.tolist()
    with pytest.raises(ValueError, match="min_share"):
        patch_segments(mask, (2, 2), min_share=0.3)
    with pytest.raises(ValueError, match="grid"):
        patch_segments(mask, (5, 2))


def test_patch_segments_on_a_real_voc_mask():
    """VOC val sample 0 (513 x 513) on a 27 x 27 grid: every patch is exactly 19 x 19 pixels."""
    mask = np.array(Image.open(shared_data("voc2012") / "0_label.png"))
    assert mask.shape == (513, 513)
    seg = patch_segments(Image.open(shared_data("voc2012") / "0_label.png"), (27, 27)).numpy()
    expected = np.empty((27, 27), dtype=np.int64)  # the vote, cell by cell, written out with numpy
    for r in range(27):
        for c in range(27):
            values, counts = np.unique(mask[19 * r : 19 * r + 19, 19 * c : 19 * c + 19], return_counts=True)
            expected[r, c] = values[counts.argmax()] if counts.max() > 361 / 2 else IGNORE_INDEX
    np.testing.assert_array_equal(seg, expected)
    ids, counts = np.unique(seg, return_counts=True)
    assert set(ids) <= {0, 1, IGNORE_INDEX} and {0, 1} <= set(ids) and counts.sum() == 729
    n = dict(zip(ids.tolist(), counts.tolist()))
    # uniform attention: a query of segment c gets n_c / 729, so the mean is sum_c n_c^2 / (729 * queries)
    s = segment_attention_share(torch.ones(730, 730, dtype=torch.float64), torch.from_numpy(seg))
    assert s.queries == n[0] + n[1]
    assert s.uniform == pytest.approx((n[0] ** 2 + n[1] ** 2) / (729 * (n[0] + n[1])), abs=1e-12)
    # class 1 (aeroplane) covers 51198 / 263169 of the pixels: its patches should be about as many
    assert abs(n[1] / 729 - 51198 / 263169) < 0.03

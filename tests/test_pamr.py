"""PAMR on constructed images whose answer is known."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sclip_lib import PAMR


def two_region_image(h=64, w=96, edge=40):
    img = torch.zeros(1, 3, h, w)
    img[:, 0, :, :edge] = 0.9  # red left
    img[:, 2, :, edge:] = 0.8  # blue right
    return img + 0.01 * torch.randn(1, 3, h, w)  # a little texture, as in photos


def test_refinement_snaps_a_blurred_boundary_to_the_colour_edge():
    torch.manual_seed(0)
    img = two_region_image(edge=40)
    # scores whose boundary sits at column 52 (12 px right of the colour edge), smoothly blurred
    cols = torch.arange(96).float()
    left = torch.sigmoid((52 - cols) / 6).expand(64, 96)
    scores = torch.stack([left, 1 - left])[None]
    before = scores.argmax(1)
    refined = PAMR(iterations=10, dilations=(8, 16))(img, scores)
    after = refined.argmax(1)
    assert (before[0, :, 40:52] == 0).all()  # wrong before refinement
    truth = (cols >= 40).long().expand(64, 96)
    assert (before[0] == truth).float().mean() == pytest.approx(83 / 96)  # columns 40..52 wrong (52: a tie)
    # after: every column's majority is right, so the boundary sits on the colour edge; the image's
    # texture leaves a few isolated pixels (under 1%) wrong
    assert torch.equal(after[0].float().mean(0).round().long(), truth[0])
    assert (after[0] == truth).float().mean() > 0.99


def test_affinities_are_a_distribution_over_neighbours():
    alpha = PAMR(dilations=(1, 2)).affinity(two_region_image())
    assert alpha.shape == (1, 16, 64, 96)
    torch.testing.assert_close(alpha.sum(1), torch.ones(1, 64, 96))


def test_affinity_is_invariant_to_channel_scale_and_offset():
    img = two_region_image()
    pamr = PAMR(dilations=(1, 3))
    scaled = img * torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1) + torch.tensor([0.1, -1, 5]).view(1, 3, 1, 1)
    torch.testing.assert_close(pamr.affinity(img), pamr.affinity(scaled), atol=1e-4, rtol=1e-4)


def test_flat_image_averages_the_neighbours_with_replicated_borders():
    img = torch.ones(1, 3, 9, 9)
    scores = torch.randn(1, 2, 9, 9)
    out = PAMR(iterations=1, dilations=(1,))(img, scores)
    padded = F.pad(scores, [1, 1, 1, 1], mode="replicate")
    kernel = torch.ones(2, 1, 3, 3) / 8
    kernel[:, :, 1, 1] = 0
    expected = F.conv2d(padded, kernel, groups=2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError):
        PAMR(iterations=0)
    with pytest.raises(ValueError, match="differ in size"):
        PAMR()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 9, 8))

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


def blurred_scores() -> torch.Tensor:
    """Two-class scores (1, 2, 64, 96) whose boundary sits at column 52, smoothly blurred."""
    cols = torch.arange(96).float()
    left = torch.sigmoid((52 - cols) / 6).expand(64, 96)
    return torch.stack([left, 1 - left])[None]


def test_refinement_snaps_a_blurred_boundary_to_the_colour_edge():
    torch.manual_seed(0)
    img = two_region_image(edge=40)
    # scores whose boundary sits at column 52 (12 px right of the colour edge), smoothly blurred
    scores = blurred_scores()
    before = scores.argmax(1)
    refined = PAMR(iterations=10, dilations=(8, 16))(img, scores)
    after = refined.argmax(1)
    assert (before[0, :, 40:52] == 0).all()  # wrong before refinement
    truth = (torch.arange(96) >= 40).long().expand(64, 96)
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


# -- the authors' formulation, written here from its formulas with unfold (no code shared) ---------
def reference_pamr(image: torch.Tensor, scores: torch.Tensor, iterations: int, dilations) -> torch.Tensor:
    """PAMR as Araslanov & Roth's code computes it (the copy shipped by SCLIP and NACLIP, ``pamr.py``).

    For each dilation d the 3x3 window {(y + d*i, x + d*j), i, j in -1..1} of a replicate-padded image.
    sigma: unbiased standard deviation over the windows of all dilations together (9 values each, the
    centre among them every time). kappa over the 8 non-centre taps of every window, mean over colour
    channels, softmax over all taps; then ``iterations`` rounds of the affinity-weighted neighbour sum.
    """
    B, C, H, W = image.shape

    def windows(x, d):  # (B, ch, 9, H, W), taps in row-major order, centre at index 4
        padded = F.pad(x, [d] * 4, mode="replicate")
        return F.unfold(padded, kernel_size=3, dilation=d).view(B, x.shape[1], 9, H, W)

    img = image.double()
    taps = torch.cat([windows(img, d) for d in dilations], dim=2)
    sigma = taps.std(dim=2, keepdim=True)
    ring = [i for i in range(9) if i != 4]
    neighbours = torch.cat([windows(img, d)[:, :, ring] for d in dilations], dim=2)
    kappa = (-(neighbours - img[:, :, None]).abs() / (1e-8 + 0.1 * sigma)).mean(dim=1)
    alpha = kappa.softmax(dim=1)  # (B, 8 * len(dilations), H, W)
    m = scores.double()
    for _ in range(iterations):
        m = torch.einsum("bkphw,bphw->bkhw", torch.cat([windows(m, d)[:, :, ring] for d in dilations], dim=2), alpha)
    return m


def test_refinement_equals_the_authors_formulation_on_a_textured_image():
    torch.manual_seed(3)
    img = two_region_image(h=40, w=56, edge=23) + 0.2 * torch.rand(1, 3, 40, 56)
    scores = torch.randn(1, 4, 40, 56)
    ours = PAMR(iterations=5, dilations=(1, 3))(img, scores)
    torch.testing.assert_close(ours.double(), reference_pamr(img, scores, 5, (1, 3)), atol=1e-5, rtol=1e-5)


def test_local_deviation_counts_the_centre_once_per_dilation():
    """A single bright pixel: its own sigma is set by how often the centre enters the deviation.

    With two dilations the authors' window holds the centre twice among 18 values; counting it once
    (this project's earlier form) gives another sigma, hence other affinities at that pixel.
    """
    img = torch.zeros(1, 1, 21, 21)
    img[0, 0, 10, 10] = 1.0
    img[0, 0, 10, 11] = 0.5
    pamr = PAMR(dilations=(1, 2))
    taps = torch.tensor([1.0, 1.0, 0.5] + [0.0] * 15)  # the centre in both windows, its right neighbour at d=1
    sigma = taps.std()
    neighbour_diffs = torch.tensor([1.0] * 16)
    neighbour_diffs[4] = 0.5  # the right-hand neighbour at d=1 (offsets: row-major ring, d=1 first)
    expected = (-neighbour_diffs / (1e-8 + 0.1 * sigma)).softmax(0)
    torch.testing.assert_close(pamr.affinity(img)[0, :, 10, 10], expected, atol=1e-6, rtol=1e-5)


def test_a_known_answer_survives_the_segmenter_image_path():
    """Normalising an image per channel (as the network input is) leaves the refinement unchanged."""
    torch.manual_seed(0)
    img = two_region_image(edge=40)
    scores = blurred_scores()
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    pamr = PAMR(iterations=10, dilations=(8, 16))
    torch.testing.assert_close(pamr(img, scores), pamr((img - mean) / std, scores), atol=1e-4, rtol=1e-4)

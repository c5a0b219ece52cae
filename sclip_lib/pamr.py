"""PAMR: pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), written for this project.

Label scores are propagated between neighbouring pixels with affinities taken from the image:
for pixel i and neighbour j (8 neighbours at each dilation),

    kappa_ij = - mean_over_colour_channels( |I_i - I_j| / (1e-8 + 0.1 * sigma_i) )
    alpha_ij = softmax_j(kappa_ij)
    m_i     <- sum_j alpha_ij m_j            (repeated ``iterations`` times)

Borders are replicated. sigma_i is the (unbiased) standard deviation of each colour channel over the
3x3 window around pixel i at every dilation, all windows together: 9 values per dilation, so the
centre pixel is counted once per dilation. That is the authors' formulation (the SCLIP and NACLIP
repositories ship it as ``pamr.py``, ``LocalStDev`` over the dilated 3x3 kernels); ``tests/test_pamr.py``
checks this module against it. Dividing by the local deviation makes the affinity invariant to
each channel's scale and offset, so raw or CLIP-normalised images give the same affinities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PAMR"]

_RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _offsets(dilations) -> list[tuple[int, int]]:
    return [(dy * d, dx * d) for d in dilations for dy, dx in _RING]


def _shifted(x: torch.Tensor, dy: int, dx: int, pad: int) -> torch.Tensor:
    """``x`` read at (y + dy, x + dx) with replicated borders; ``x`` is ``(B, C, H, W)``, pre-padded by ``pad``."""
    H, W = x.shape[-2] - 2 * pad, x.shape[-1] - 2 * pad
    return x[..., pad + dy : pad + dy + H, pad + dx : pad + dx + W]


class PAMR(nn.Module):
    """Refine ``(B, K, H, W)`` label scores with the affinities of the ``(B, C, H, W)`` image."""

    def __init__(self, iterations: int = 10, dilations: tuple[int, ...] = (8, 16)) -> None:
        super().__init__()
        if iterations < 1 or not dilations or min(dilations) < 1:
            raise ValueError("PAMR needs iterations >= 1 and positive dilations, e.g. PAMR(10, (8, 16))")
        self.iterations = iterations
        self.dilations = tuple(dilations)

    @torch.no_grad()
    def affinity(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised affinities ``(B, P, H, W)``, one plane per neighbour offset, summing to 1 over P."""
        pad = max(self.dilations)
        image = image.float()
        padded = F.pad(image, [pad] * 4, mode="replicate")
        offsets = _offsets(self.dilations)
        # each dilation's 3x3 window holds the centre too: len(dilations) copies of it in the deviation.
        # Two passes over the shifted views (mean, then squared deviations) instead of one stack of all
        # P neighbours: the same unbiased deviation, a working set of a few image planes.
        n = len(offsets) + len(self.dilations)
        mean = image * len(self.dilations)
        for dy, dx in offsets:
            mean = mean + _shifted(padded, dy, dx, pad)
        mean = mean / n
        squares = (image - mean).square() * len(self.dilations)
        for dy, dx in offsets:
            squares = squares + (_shifted(padded, dy, dx, pad) - mean).square()
        scale = 1e-8 + 0.1 * (squares / (n - 1)).sqrt()
        kappa = [-((image - _shifted(padded, dy, dx, pad)).abs() / scale).mean(dim=1) for dy, dx in offsets]
        return torch.stack(kappa, dim=1).softmax(dim=1)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] != scores.shape[-2:]:
            raise ValueError(f"image {tuple(image.shape[-2:])} and scores {tuple(scores.shape[-2:])} differ in size")
        alpha = self.affinity(image).to(scores.dtype)
        pad = max(self.dilations)
        width = scores.shape[-1] + 2 * pad
        span = _span(scores.shape[-2], width, pad)
        # the affinities laid out at the padded width (see _step); the pad columns are never read back
        alpha = F.pad(alpha, [0, 2 * pad]).flatten(2)[:, :, None, :span]
        # each channel is refined on its own (the update is linear per channel, one set of affinities for
        # all): all iterations of a few channels at a time keep their working set in cache
        step = _CPU_CHANNELS if scores.device.type == "cpu" else scores.shape[1]
        out = torch.empty_like(scores)
        for first in range(0, scores.shape[1], step):
            chunk = scores[:, first : first + step]
            for _ in range(self.iterations):
                chunk = self._step(chunk, alpha, pad)
            out[:, first : first + step] = chunk
        return out

    def _step(self, scores: torch.Tensor, alpha: torch.Tensor, pad: int) -> torch.Tensor:
        """One propagation of ``(B, c, H, W)`` scores: each pixel becomes its neighbours' alpha-weighted sum.

        The padded scores are read as one flat row per channel: pixel (y, x) and its neighbour (y + dy,
        x + dx) are a fixed distance ``dy * width + dx`` apart, so every neighbour's term is one long
        contiguous multiply-add (over the pad columns too, whose results are dropped). Per pixel the
        arithmetic is the textbook loop's, neighbour by neighbour in the same order.
        """
        b, c, height, w = scores.shape
        width = w + 2 * pad
        span = _span(height, width, pad)
        padded = F.pad(scores, [pad] * 4, mode="replicate").flatten(2)
        out = scores.new_empty(b, c, height * width)
        acc = out[..., :span]
        origin = pad * width + pad  # pixel (0, 0) in the padded rows
        for p, (dy, dx) in enumerate(_offsets(self.dilations)):
            start = origin + dy * width + dx
            if p == 0:
                torch.mul(alpha[:, p], padded[..., start : start + span], out=acc)
            else:
                acc.addcmul_(alpha[:, p], padded[..., start : start + span])  # one kernel, no temporary
        return out.view(b, c, height, width)[..., :w]


# channels refined together on a CPU: a few channels' iterations keep their working set in cache; all
# channels at once would not fit and go back to memory on every iteration
_CPU_CHANNELS = 4


def _span(height: int, width: int, pad: int) -> int:
    """Flat length from pixel (0, 0) to pixel (height - 1, last) in rows of ``width`` (the padded width)."""
    return height * width - 2 * pad

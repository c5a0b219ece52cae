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
    [((2, 9, 37, 53), 3, (8, 16)), ((1, 5, 224, 224), 2, (8, 16)), ((1, 3, 20, 31), 4, (1, 2, 5)), ((1, 1, 7, 5), 2, (8,))],
)
def test_pamr_is_bit_identical_to_the_previous_loop(shape, iterations, dilations):
    g = torch.Generator().manual_seed(sum(shape))
    image = torch.rand(shape[0], 3, *shape[2:], generator=g)
    scores = torch.randn(*shape, generator=g)
    pamr = PAMR(iterations, dilations)
    assert torch.equal(pamr(image, scores), previous_pamr(pamr, image, scores))

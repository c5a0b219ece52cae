"""Ground-truth localisation of attention: how much of a patch's attention lands on its own segment.

Spatial invariance (:func:`sclip_lib.book.spatial_invariance`) compares attention rows with each other and
needs no labels, but it cannot rank methods: identity attention (MaskCLIP) is the least invariant of all.
This measure asks the ground truth instead::

    segments = patch_segments(mask, enc.grid(*image.shape[-2:]))   # segment id per patch (majority vote)
    s = segment_attention_share(enc.attention_maps(image), segments)
    s.share, s.uniform, s.lift      # own-segment share, what uniform attention gives, share / uniform

Only patch-to-patch attention counts: the CLS row and column are dropped and every query's row is
renormalised over the patches (SCLIP's rows sum to 2, and attention spent on CLS says nothing about where
on the image a patch looks). Heads are averaged before that, as in spatial invariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["IGNORE_INDEX", "SegmentShare", "patch_segments", "segment_attention_share"]

IGNORE_INDEX = 255  # the benchmarks' "not labelled" value (VOC's borders, reduced ADE20K's "other")


@dataclass(frozen=True)
class SegmentShare:
    """The mean own-segment share of attention over the query patches that have a segment."""

    share: float  # mean over queries of the attention (over patches) on patches of the query's own segment
    uniform: float  # the same for uniform attention: the mean over queries of their segment's area fraction
    queries: int  # query patches counted (patches with a segment, over all images)

    @property
    def lift(self) -> float:
        """``share / uniform``: 1 means no better than attending everywhere alike."""
        return self.share / self.uniform


def patch_segments(
    mask, grid: tuple[int, int], ignore_index: int = IGNORE_INDEX, min_share: float = 0.5
) -> torch.Tensor:
    """The segment id of each patch ``(rows, cols)`` int64, by majority vote of the mask's pixels.

    ``mask`` ``(H, W)`` (tensor, array or PIL image of segment ids) is covered by the patch grid stretched
    over it, as the network's patches cover the resized image: pixel ``(y, x)`` belongs to patch
    ``(y * rows // H, x * cols // W)``. A patch takes the id that covers more than ``min_share`` of its
    pixels, ignore pixels counted; a mixed patch, or one whose majority is ``ignore_index``, gets
    ``ignore_index``.
    """
    m = torch.as_tensor(np.array(mask)).long()  # a copy: PIL images give read-only arrays
    rows, cols = grid
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {tuple(m.shape)}")
    if not (0 < rows <= m.shape[0] and 0 < cols <= m.shape[1]):
        raise ValueError(f"grid {grid} needs a mask at least that large with positive sides, got {tuple(m.shape)}")
    if not 0.5 <= min_share < 1:
        raise ValueError(f"min_share must lie in [0.5, 1) so that a patch has at most one majority, got {min_share}")
    cell_y = torch.arange(m.shape[0]) * rows // m.shape[0]
    cell_x = torch.arange(m.shape[1]) * cols // m.shape[1]
    cell = (cell_y[:, None] * cols + cell_x[None, :]).flatten()
    labels, index = torch.unique(m.flatten(), return_inverse=True)
    counts = torch.bincount(cell * len(labels) + index, minlength=rows * cols * len(labels)).reshape(rows * cols, -1)
    top, arg = counts.max(dim=1)
    segments = labels[arg]
    segments[top <= min_share * counts.sum(dim=1)] = ignore_index
    return segments.reshape(rows, cols)


def segment_attention_share(
    attn: torch.Tensor, segments: torch.Tensor, ignore_index: int = IGNORE_INDEX, exclude_self: bool = False
) -> SegmentShare:
    """How much of each query patch's attention lands on patches of its own segment, and the uniform baseline.

    ``attn``: ``(B, heads, L, L)``, ``(heads, L, L)`` or ``(L, L)`` with CLS as token 0 and the patches in
    row-major order (as :meth:`DenseEncoder.attention_maps` returns). ``segments``: the patches' segment ids
    ``(rows, cols)`` (one map for every image) or ``(B, rows, cols)``, e.g. from :func:`patch_segments`.

    Heads are averaged, the CLS row and column dropped and each row renormalised over the patches. Queries
    labelled ``ignore_index`` are left out; as keys they stay in the denominator (attention on them is not
    on the query's segment), and the baseline counts them alike, so uniform attention gives exactly
    ``uniform``. Identity attention gives 1: a patch's own token is in its own segment.

    ``exclude_self=True`` also drops each query's attention to itself (the diagonal) before renormalising,
    so only what a patch gathers from *other* patches counts; the baseline is then ``(|S| - 1) / (N - 1)``
    for a query in a segment of ``|S|`` of the ``N`` patches, and identity attention, which gathers nothing
    from other patches, is refused as undefined.
    """
    a = attn.detach().double().cpu()
    if a.ndim not in (2, 3, 4) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attn must be (B, heads, L, L), (heads, L, L) or (L, L), got shape {tuple(a.shape)}")
    a = a.reshape(-1, *a.shape[-3:]) if a.ndim == 4 else a.reshape(1, -1, *a.shape[-2:])
    patches = a.mean(dim=1)[:, 1:, 1:]
    seg = torch.as_tensor(segments).long().cpu()
    seg = seg.reshape(-1, seg.shape[-2] * seg.shape[-1]) if seg.ndim >= 2 else seg.reshape(1, -1)
    if seg.shape[-1] != patches.shape[-1] or seg.shape[0] not in (1, patches.shape[0]):
        raise ValueError(
            f"attention over {patches.shape[-1] + 1} tokens (CLS + {patches.shape[-1]} patches) for {patches.shape[0]} "
            f"image(s), but segments give {seg.shape[-1]} patches for {seg.shape[0]}: pass the segment map of the "
            "attention's own patch grid, e.g. patch_segments(mask, encoder.grid(height, width))"
        )
    seg = seg.expand(patches.shape[0], -1)
    n = seg.shape[-1]
    same = seg[:, :, None] == seg[:, None, :]
    if exclude_self:
        others = ~torch.eye(n, dtype=torch.bool)
        patches, same = patches * others, same & others
    queries = seg != ignore_index
    if not queries.any():
        raise ValueError(f"every patch is labelled ignore_index={ignore_index}: there is no query to measure")
    totals = patches.sum(dim=-1)
    if (totals[queries] <= 0).any():
        where = "any other patch (identity attention?)" if exclude_self else "any patch (all on CLS)"
        raise ValueError(f"some query gives no attention to {where}, so its share is undefined")
    share = (patches * same).sum(dim=-1) / totals.where(queries, torch.ones_like(totals))  # ignored rows: unused
    uniform = same.sum(dim=-1).double() / (n - 1 if exclude_self else n)
    return SegmentShare(float(share[queries].mean()), float(uniform[queries].mean()), int(queries.sum()))

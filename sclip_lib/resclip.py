"""ResCLIP's two plug-ins (Yang et al., CVPR 2025, arXiv 2411.15851) as modifiers of any last-block attention.

- **RCS** (residual cross-correlation self-attention): the mean of CLIP's own attention softmax(s q k^T)
  in intermediate blocks is mixed into the last block's attention A:
  ``A' = tau_rcs * ((1 - lambda_rcs) * A + lambda_rcs * mean_i softmax(s q_i k_i^T))``, per head.
- **SFR** (semantic feedback refinement): a first pass gives a coarse segmentation of the window; from
  it an affinity S "patch i and patch j have the same class" (decayed where the straight path between
  them leaves the class, smoothed by a Gaussian, rows normalised) is blended into every logit matrix of
  the base before its softmax: ``L' = tau_sfr * ((1 - lambda_sfr) * L + lambda_sfr * S / max S)``.

Both are written here from the authors' code, github.com/yvhangyang/ResCLIP at commit 0e085f7
(``clip/model.py``: ``VisionTransformer.forward``, ``custom_attn``, ``create_logit_temp``,
``create_patch_matrix``, ``check_path``, ``generate_attention_sfr``; ``configs/cfg_*.py`` for the
weights). The paper's main method is NACLIP + RCS + SFR (``test_all.sh wo_resi resclip 5``).

    seg = sl.Segmenter(model, classes, attention="naclip+rcs+sfr")    # defaults below
    seg = sl.Segmenter(model, classes, attention=sl.resclip("sclip", temp_thd=0.5, sfr_weights=(2.2, 0.7)))
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from .attention import AttentionVariant, Prior, get_attention, register_modifier

__all__ = [
    "RCS_LAYERS",
    "resclip",
    "rcs",
    "sfr",
    "patch_labels",
    "same_class_affinity",
    "straight_path_within_class",
    "sfr_affinity",
]

# clip/model.py, VisionTransformer.forward: `selected_attns = torch.stack([attn_map[i] for i in range(5, 9)])`,
# i.e. blocks 6-9 of ViT-B/16, heads kept, averaged. The authors use the same indices for ViT-L/14.
RCS_LAYERS = (5, 6, 7, 8)
# Defaults where no benchmark protocol is given: the authors' COCO-Stuff and COCO-Object configs
# (configs/cfg_coco_stuff164k.py, cfg_coco_object.py); each benchmark's own values are in
# the "resclip" protocol (sclip_lib.benchmarks.protocols). The authors' code has no global default (it raises).
DEFAULT_RCS_WEIGHTS = (2.0, 0.4)  # (tau_rcs, lambda_rcs) = attn_rcs_weights
DEFAULT_SFR_WEIGHTS = (1.8, 0.7)  # (tau_sfr, lambda_sfr) = attn_sfr_weights
DEFAULT_TEMP_THD = 0.11  # temp_thd: first-pass pixels less confident than this count as query 0
# README / test_all.sh: `bash test_all.sh wo_resi resclip 5`: gaussian_std = 5, used both by NACLIP's
# neighbourhood window and by SFR's smoothing (generate_attention_sfr(gaussian_std=self.gaussian_std)).
SFR_SIGMA = 5.0


# -- RCS --------------------------------------------------------------------------------------------
def rcs(
    base: str | AttentionVariant,
    weights: tuple[float, float] = DEFAULT_RCS_WEIGHTS,
    layers: tuple[int, ...] = RCS_LAYERS,
) -> AttentionVariant:
    """``base`` with RCS: its attention mixed with the mean q-k attention of blocks ``layers``."""
    base = get_attention(base)
    tau, lam = (float(w) for w in weights)
    layers = tuple(layers)
    if not layers:
        raise ValueError("RCS needs at least one earlier block to read the attention of, e.g. layers=(5, 6, 7, 8)")

    def fn(q, k, v, ctx):
        # A' @ v = tau (1 - lam) (A @ v) + tau lam (R @ v): the base's own output stays one opaque call
        residual = torch.stack([ctx.layers[i] for i in layers]).mean(dim=0)
        return tau * (1 - lam) * base.fn(q, k, v, ctx) + tau * lam * (residual.to(v.dtype) @ v)

    return replace(
        base,
        name=f"{base.name}+rcs",
        fn=fn,
        description=f"{base.description} + RCS: mixed with the mean q-k attention of blocks {list(layers)}",
        layers=tuple(sorted(set(base.layers) | set(layers))),
        params={**base.params, "rcs_weights": (tau, lam), "rcs_layers": layers},
    )


# -- SFR --------------------------------------------------------------------------------------------
def sfr(
    base: str | AttentionVariant,
    weights: tuple[float, float] = DEFAULT_SFR_WEIGHTS,
    temp_thd: float = DEFAULT_TEMP_THD,
    sigma: float = SFR_SIGMA,
    same_object: bool = True,
) -> AttentionVariant:
    """``base`` with SFR: its logits blended with the same-class affinity of the first pass's segmentation.

    ``same_object`` is the authors' ``delete_same_entity`` (True in every config): same-class pairs whose
    straight path leaves the class are decayed with their distance.
    """
    base = get_attention(base)
    if not base.takes_bias:
        raise ValueError(
            f"SFR adjusts attention logits before the softmax, but {base.name!r} does not take a logit bias "
            "(register it with takes_bias=True and add ctx.bias to its logits), or has no softmax at all"
        )
    tau, lam = (float(w) for w in weights)

    def fn(q, k, v, ctx):
        if ctx.prior is None:  # the first pass: the base (with any other modifier) unchanged
            return base.fn(q, k, v, ctx)
        s = sfr_affinity(patch_labels(ctx.prior, ctx.grid, temp_thd), sigma, same_object).to(q.device)
        s = s / s.amax(dim=(-2, -1), keepdim=True)  # custom_attn: attn_sfr / torch.max(attn_sfr), per window
        # tau ((1 - lam) (scale X + bias) + lam S) for every logit matrix X of the base: one scale, one bias
        bias = tau * lam * s[:, None]
        if ctx.bias is not None:
            bias = bias + tau * (1 - lam) * ctx.bias
        return base.fn(q, k, v, replace(ctx, scale=ctx.scale * (tau * (1 - lam)), bias=bias))

    return replace(
        base,
        name=f"{base.name}+sfr",
        fn=fn,
        description=f"{base.description} + SFR: logits blended with the first pass's same-class affinity",
        needs_prior=True,
        params={
            **base.params,
            "sfr_weights": (tau, lam),
            "temp_thd": float(temp_thd),
            "sfr_sigma": float(sigma),
            "sfr_same_object": bool(same_object),
        },
    )


def patch_labels(prior: Prior, grid: tuple[int, int], temp_thd: float) -> torch.Tensor:
    """The class of each patch ``(B, rows, cols)``: the most frequent first-pass query among its pixels.

    As ``create_patch_matrix``: pixels whose top probability is below ``temp_thd`` count as query 0;
    pixels beyond the last whole patch are dropped, as the patch embedding drops them.
    """
    labels = prior.top_query.masked_fill(prior.confidence < temp_thd, 0)
    (rows, cols), (ph, pw) = grid, prior.patch_size
    b = labels.shape[0]
    blocks = labels[:, : rows * ph, : cols * pw].reshape(b, rows, ph, cols, pw).permute(0, 1, 3, 2, 4)
    return torch.mode(blocks.reshape(b, rows, cols, ph * pw), dim=-1).values


def same_class_affinity(labels: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` float (``(B, N, N)`` for a batch): 1 where patches i and j (row-major over the
    ``(rows, cols)`` map) share a class."""
    flat = labels.flatten(-2)
    return (flat[..., :, None] == flat[..., None, :]).float()


def straight_path_within_class(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pair of patches: whether the sampled straight path from i stays in i's class, and its length.

    ``labels`` is one ``(rows, cols)`` map or a batch ``(B, rows, cols)``. Returns ``(valid, steps)``:
    ``valid`` ``(N, N)`` (or ``(B, N, N)``) bool, ``steps`` ``(N, N)`` int64, the Chebyshev distance. As the
    authors' ``check_path``: the path is sampled at ``t = s / max_steps`` for ``s = 0..steps`` (rounded to
    the grid), ``max_steps`` being the largest distance in the grid, so for a pair closer than that only
    the part of the segment nearest to i is checked.
    """
    if labels.ndim == 2:
        valid, steps = straight_path_within_class(labels[None])
        return valid[0], steps
    b, rows, cols = labels.shape
    n = rows * cols
    idx = torch.arange(n, device=labels.device)
    coords = torch.stack([idx // cols, idx % cols], dim=-1)
    steps = (coords[:, None] - coords[None, :]).abs().amax(dim=-1)
    max_steps = int(steps.max())
    flat = labels.reshape(b, n)
    valid = torch.ones(b, n, n, dtype=torch.bool, device=labels.device)
    if max_steps == 0:
        return valid, steps
    t = torch.linspace(0, 1, max_steps + 1, device=labels.device)[None, :, None]
    # the path's geometry is the same for every window of the batch: computed once per chunk of start
    # patches, whose size bounds the (B, chunk, n, T) lookups
    chunk = max(1, (1 << 22) // (b * n * (max_steps + 1)))
    for first in range(0, n, chunk):
        start = coords[first : first + chunk, None, None, :]  # (c, 1, 1, 2)
        end = coords[None, :, None, :]  # (1, n, 1, 2)
        path = (start * (1 - t) + end * t).round().long()  # (c, n, T, 2), float32 as in check_path
        on_class = flat[:, path[..., 0] * cols + path[..., 1]] == flat[:, first : first + chunk, None, None]
        in_reach = torch.arange(max_steps + 1, device=labels.device) <= steps[first : first + chunk, :, None]
        valid[:, first : first + chunk] = (on_class | ~in_reach).all(dim=-1)
    return valid, steps


def sfr_affinity(labels: torch.Tensor, sigma: float = SFR_SIGMA, same_object: bool = True) -> torch.Tensor:
    """SFR's attention prior ``(B, 1 + N, 1 + N)`` from patch classes ``(B, rows, cols)`` (or one ``(rows, cols)``).

    ``generate_attention_sfr``: same-class affinity (diagonal 1); with ``same_object``, pairs whose path
    leaves the class are multiplied by ``exp(-steps / max_steps)``; each row is smoothed by a 1-D Gaussian
    (std ``sigma``, over the row-major patch index, zero padding) and normalised to sum 1. The CLS row and
    column are 0. The windows of a batch are computed together.
    """
    if labels.ndim == 2:
        return sfr_affinity(labels[None], sigma, same_object)[0]
    b, rows, cols = labels.shape
    n = rows * cols
    s = same_class_affinity(labels)  # the diagonal is 1 already: a patch shares its own class
    if same_object:
        valid, steps = straight_path_within_class(labels)
        max_steps = int(steps.max())
        if max_steps > 0:
            s = torch.where(valid, s, s * torch.exp(-steps / max_steps))
    kernel = _gaussian_kernel(n, sigma, labels.device)
    blurred = F.conv1d(s.reshape(b * n, 1, n), kernel[None, None], padding=kernel.numel() // 2).reshape(b, n, n).relu()
    out = torch.zeros(b, n + 1, n + 1, device=labels.device)
    out[:, 1:, 1:] = blurred / (blurred.sum(dim=-1, keepdim=True) + 1e-8)
    return out


def _gaussian_kernel(n: int, sigma: float, device) -> torch.Tensor:
    """generate_attention_sfr's kernel: size min(n, int(6 sigma + 1)) made odd, normalised to sum 1."""
    size = min(n, int(6 * sigma + 1))
    size += 1 - size % 2
    x = torch.arange(size, device=device) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


# -- both -------------------------------------------------------------------------------------------
def resclip(
    base: str | AttentionVariant = "naclip",
    *,
    use_rcs: bool = True,
    use_sfr: bool = True,
    rcs_weights: tuple[float, float] = DEFAULT_RCS_WEIGHTS,
    sfr_weights: tuple[float, float] = DEFAULT_SFR_WEIGHTS,
    temp_thd: float = DEFAULT_TEMP_THD,
    sigma: float = SFR_SIGMA,
    same_object: bool = True,
    layers: tuple[int, ...] = RCS_LAYERS,
) -> AttentionVariant:
    """ResCLIP on ``base`` (``"naclip"`` is the paper's main method; ``"sclip"``, ``"clearclip"`` also work).

    Pass the result as ``attention=`` to :class:`~sclip_lib.Segmenter`. ``attention="naclip+rcs+sfr"``
    is the same with the defaults of this module.
    """
    variant = get_attention(base)
    if not (use_rcs or use_sfr):
        return variant
    if use_sfr:  # SFR inside RCS, as custom_attn: SFR changes the logits, RCS mixes after the softmax
        variant = sfr(variant, sfr_weights, temp_thd, sigma, same_object)
    if use_rcs:
        variant = rcs(variant, rcs_weights, layers)
    if use_rcs and use_sfr:
        variant = replace(variant, name=f"{get_attention(base).name}+rcs+sfr")
    return variant


register_modifier("rcs")(rcs)
register_modifier("sfr")(sfr)

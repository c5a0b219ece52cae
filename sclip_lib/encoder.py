"""Run an open_clip ViT with its last block's attention swapped, and read dense patch features.

Blocks 1..L-1 run unchanged; the last block reuses its own pretrained q/k/v and output projections
and only the attention pattern (and, per variant, the residual + MLP) changes. The wrapped model is
never modified, so several encoders with different variants can share one set of weights.

``final_blocks=N`` swaps the attention of the last N blocks instead (see :class:`DenseEncoder`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionContext, AttentionVariant, Prior, attention_weights, get_attention

__all__ = ["DenseEncoder", "Feedback", "POS_RESIZE_RULES", "resize_positional_embedding"]

# Builds a prior from the first pass: (L2-normalised patch features (B, dim, h, w), the windows (B, 3, H, W)).
Feedback = Callable[[torch.Tensor, torch.Tensor], Prior]

# How the learned positional embedding is resized to another patch grid:
# "scale_factor": the rule of the CLIP code that SCLIP, ClearCLIP, NACLIP and ResCLIP ship (``clip/model.py`` /
#     ``open_clip/transformer.py``, ``interpolate_pos_encoding``): bicubic with
#     ``scale_factor=(g + 0.1) / G`` per axis. The output has g entries, but the sampling grid is that
#     of a (g + 0.1)-long axis, slightly shifted from an exact g-point resize.
# "size": an explicit output size (MaskCLIP's ``resize_pos_embed`` in ``mmseg/models/backbones/vit.py``).
POS_RESIZE_RULES = ("scale_factor", "size")


def resize_positional_embedding(
    patches: torch.Tensor, grid: tuple[int, int], rule: str = "scale_factor"
) -> torch.Tensor:
    """Bicubically resize a ``(1, dim, G0, G1)`` patch positional embedding to ``grid`` by ``rule``."""
    if rule == "size":
        return F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
    if rule != "scale_factor":
        raise ValueError(f"unknown positional-embedding resize rule {rule!r}; use one of {POS_RESIZE_RULES}")
    scale = tuple((g + 0.1) / G for g, G in zip(grid, patches.shape[-2:]))
    out = F.interpolate(patches, scale_factor=scale, mode="bicubic", align_corners=False, recompute_scale_factor=False)
    if tuple(out.shape[-2:]) != tuple(grid):  # the +0.1 keeps floor() from rounding an axis down
        raise RuntimeError(f"positional embedding resized to {tuple(out.shape[-2:])}, expected {grid}")
    return out


class DenseEncoder(nn.Module):
    """Dense image encoder over ``model.visual`` with the attention variant ``attention`` in the last block.

    ``forward(images)`` returns every output token after ``ln_post`` and ``proj``: ``(B, 1 + h*w, dim)``,
    CLS first. ``dense_features(images)`` returns the L2-normalised patch features ``(B, dim, h, w)``.

    Variants that read earlier blocks' attention (``variant.layers``) get it from the same forward pass;
    variants that need a prior (``variant.needs_prior``) run the last block twice, the first time without
    the prior, and ``feedback`` turns that first pass's patch features into the prior.

    ``final_blocks=N`` applies the variant to the last N blocks. Blocks L-N .. L-2 run with the variant's
    attention function in place of q-k attention but keep their residual connection and MLP whatever
    the variant's ``keep_residual`` (the papers that change intermediate blocks keep the residual
    stream there); the last block behaves exactly as with N=1 (residual and MLP per ``keep_residual``).
    Every block runs once. N=1 (the default) is the published methods' setting and leaves every
    output unchanged. Variants that read earlier blocks (ResCLIP's RCS) or need a prior (SFR) accept
    only N=1: which blocks they would read, or which pass gives the prior, is not defined for N>1.
    The SCLIP paper's "how many final blocks" ablation could not be read here (arXiv 2312.01597):
    whether it kept the residual and MLP in the extra blocks is unverified.
    """

    def __init__(
        self,
        model: nn.Module,
        attention: str | AttentionVariant = "sclip",
        pos_resize: str = "scale_factor",
        final_blocks: int = 1,
    ) -> None:
        super().__init__()
        if pos_resize not in POS_RESIZE_RULES:
            raise ValueError(f"pos_resize must be one of {POS_RESIZE_RULES}, got {pos_resize!r}")
        self.pos_resize = pos_resize
        visual = getattr(model, "visual", model)
        _check_supported(visual)
        self.visual = visual
        self.variant: AttentionVariant = get_attention(attention)
        depth = len(visual.transformer.resblocks)
        self.final_blocks = _check_final_blocks(final_blocks, depth, self.variant)
        last = depth - 1
        if any(not 0 <= i < last for i in self.variant.layers):
            raise ValueError(
                f"attention {self.variant.name!r} reads blocks {list(self.variant.layers)}, but this ViT has blocks "
                f"0..{last - 1} before its last block; choose block indices below {last}"
            )
        self.patch_size: tuple[int, int] = tuple(visual.patch_size)
        self._pos_cache: dict[tuple, torch.Tensor] = {}

    @property
    def attention(self) -> str:
        return self.variant.name

    @property
    def modified_blocks(self) -> range:
        """Indices of the blocks that run with the variant's attention (the last ``final_blocks``)."""
        depth = len(self.visual.transformer.resblocks)
        return range(depth - self.final_blocks, depth)

    # -- stages -------------------------------------------------------------------------------------
    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid of an input; trailing pixels that do not fill a patch are dropped, as by the conv."""
        return height // self.patch_size[0], width // self.patch_size[1]

    def positional_embedding(self, grid: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """The model's positional embedding, bicubically resized to ``grid`` (CLS entry unchanged).

        The resize follows ``self.pos_resize`` (see :data:`POS_RESIZE_RULES`); the native grid is
        returned unchanged.
        """
        pos = self.visual.positional_embedding
        key = (grid, dtype, pos.device, pos._version)
        if key not in self._pos_cache:
            cls, patches = pos[:1], pos[1:]
            g0, g1 = self.visual.grid_size
            if (g0, g1) != grid:
                patches = patches.reshape(1, g0, g1, -1).permute(0, 3, 1, 2).float()
                patches = resize_positional_embedding(patches, grid, self.pos_resize)
                patches = patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
            self._pos_cache = {key: torch.cat([cls, patches.to(pos.dtype)]).to(dtype)}  # one grid at a time
        return self._pos_cache[key]

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patchify, add CLS and (resized) positional embedding, ``ln_pre``: ``(B, 1 + h*w, width)``."""
        v = self.visual
        x = v.conv1(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding(grid, x.dtype)
        return v.ln_pre(v.patch_dropout(x))

    def run_blocks(self, x: torch.Tensor, stop: int, start: int = 0) -> torch.Tensor:
        """Run the unchanged blocks ``start .. stop-1`` (batch-first in and out)."""
        t = self.visual.transformer
        if not getattr(t, "batch_first", True):
            x = x.transpose(0, 1)
        for block in t.resblocks[start:stop]:
            x = block(x)
        return x if getattr(t, "batch_first", True) else x.transpose(0, 1)

    def run_blocks_collecting(self, x: torch.Tensor, stop: int, layers: tuple[int, ...]):
        """``run_blocks`` that also returns ``{i: softmax(s q k^T)}`` ``(B, heads, L, L)`` of the blocks ``layers``.

        Those blocks run through the same projections as the last block, with their attention written
        out so that its matrix can be kept; their output equals the block's own forward up to rounding.
        """
        seq_first = not getattr(self.visual.transformer, "batch_first", True)
        maps: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.visual.transformer.resblocks[:stop]):
            if i in layers:
                x = _block_forward(block, x, _recording_qk_attention(maps, i), True, grid=(0, 0))
            else:
                x = block(x.transpose(0, 1)).transpose(0, 1) if seq_first else block(x)
        return x, maps

    def last_block(
        self,
        x: torch.Tensor,
        grid: tuple[int, int],
        *,
        layers: dict[int, torch.Tensor] | None = None,
        prior: Prior | None = None,
    ) -> torch.Tensor:
        """The swapped last block (``layers`` and ``prior`` reach the variant through its context)."""
        block = self.visual.transformer.resblocks[-1]
        return _block_forward(block, x, self.variant, self.variant.keep_residual, grid, layers=layers, prior=prior)

    def block_input(self, images: torch.Tensor, layer: int) -> torch.Tensor:
        """The input ``(B, L, width)`` of block ``layer`` in this encoder's forward pass.

        Blocks before the modified ones run unchanged; modified blocks before ``layer`` (``final_blocks``
        > 1) run with the variant's attention, keeping their residual and MLP.
        """
        first = self.modified_blocks.start
        x = self.run_blocks(self.embed(images), min(layer, first))
        grid = self.grid(*images.shape[-2:])
        for block in self.visual.transformer.resblocks[first:layer]:
            x = _block_forward(block, x, self.variant, True, grid)
        return x

    def last_block_input(self, images: torch.Tensor):
        """The last block's input ``(B, L, width)`` and the attention of the blocks the variant reads."""
        stop = len(self.visual.transformer.resblocks) - 1
        if self.variant.layers:  # only with final_blocks=1 (checked at construction)
            return self.run_blocks_collecting(self.embed(images), stop, self.variant.layers)
        return self.block_input(images, stop), None

    def forward(self, images: torch.Tensor, feedback: Feedback | None = None) -> torch.Tensor:
        grid = self.grid(*images.shape[-2:])
        x, layers = self.last_block_input(images)
        prior = self._prior(x, grid, layers, images, feedback)
        x = self.last_block(x, grid, layers=layers, prior=prior)
        return self.visual.ln_post(x) @ self.visual.proj

    def dense_features(self, images: torch.Tensor, feedback: Feedback | None = None) -> torch.Tensor:
        """L2-normalised patch features ``(B, dim, h, w)``; the CLS token is dropped here, at the end."""
        tokens = self(images) if feedback is None else self(images, feedback)
        return self._dense(tokens, self.grid(*images.shape[-2:]))

    @staticmethod
    def _dense(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        tokens = F.normalize(tokens[:, 1:], dim=-1)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *grid)

    def _prior(self, x, grid, layers, images, feedback: Feedback | None) -> Prior | None:
        """The first pass (last block only, without prior) turned into a prior by ``feedback``."""
        if not self.variant.needs_prior:
            return None
        if feedback is None:
            raise ValueError(
                f"attention {self.variant.name!r} refines the last block with a first-pass segmentation, which needs "
                "the class names: run it through sclip_lib.Segmenter, or pass feedback= (patch features -> Prior)"
            )
        first = self.visual.ln_post(self.last_block(x, grid, layers=layers)) @ self.visual.proj
        return feedback(self._dense(first, grid), images)

    @torch.no_grad()
    def attention_maps(
        self,
        images: torch.Tensor,
        layer: int = -1,
        attention: str | AttentionVariant | None = None,
        feedback: Feedback | None = None,
    ) -> torch.Tensor:
        """Attention matrices ``(B, heads, L, L)`` of block ``layer`` under ``attention`` (default: ours).

        The block's input is the one this encoder's forward gives it: with ``final_blocks`` > 1 the
        modified blocks before ``layer`` have run with the variant. For the last block, variants that
        read earlier blocks or a prior get them as in ``forward`` (``feedback`` builds the prior).
        """
        blocks = self.visual.transformer.resblocks
        layer = layer % len(blocks)
        variant = get_attention(attention or self.variant)
        layers = prior = None
        grid = self.grid(*images.shape[-2:])
        if layer == len(blocks) - 1 and (variant.layers or variant.needs_prior):
            enc = DenseEncoder(self.visual, variant, self.pos_resize, self.final_blocks)
            x, layers = enc.last_block_input(images)
            prior = enc._prior(x, grid, layers, images, feedback)
        else:
            x = self.block_input(images, layer)
        attn, h = blocks[layer].attn, blocks[layer].ln_1(x)
        q, k, _, scale = _project_qkv(attn, h)
        ctx = AttentionContext(scale=scale, grid=grid, layers=layers, prior=prior, **_input_context(variant, attn, h))
        return attention_weights(variant, q, k, ctx)


def _check_final_blocks(n, depth: int, variant: AttentionVariant) -> int:
    """``n`` checked against the ViT's depth and what the variant can do in several blocks."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= depth:
        raise ValueError(f"final_blocks must be an int from 1 to {depth} (this ViT has {depth} blocks), got {n!r}")
    if n > 1 and (variant.layers or variant.needs_prior):
        what = (
            "reads the attention of earlier blocks (RCS)" if variant.layers else "refines with a first-pass prior (SFR)"
        )
        raise ValueError(
            f"attention {variant.name!r} {what}, which is defined for the last block only: use final_blocks=1, "
            "or a variant without these modifiers for final_blocks > 1"
        )
    return int(n)


def _check_supported(visual: nn.Module) -> None:
    needed = ("conv1", "class_embedding", "positional_embedding", "transformer", "ln_post", "proj")
    missing = [n for n in needed if not hasattr(visual, n)]
    if missing:
        raise TypeError(
            f"{type(visual).__name__} is not an open_clip VisionTransformer (missing {', '.join(missing)}); "
            "sclip_lib works on open_clip's own ViTs (ViT-B-16, ViT-B-32, ViT-L-14, ...), "
            "not on ResNet, ConvNeXt or timm towers."
        )
    if getattr(visual, "attn_pool", None) is not None:
        raise TypeError("ViTs with an attentional pooler (CoCa) have no per-patch output tokens.")
    if visual.proj is None:
        raise TypeError("this ViT has no output projection (proj is None), so its tokens are not in text space.")


def _block_forward(block: nn.Module, x: torch.Tensor, fn, keep_residual: bool, grid: tuple[int, int], **context):
    """One block (batch-first) with the attention ``fn`` (a function or a variant); ``context`` completes its
    AttentionContext."""
    h = block.ln_1(x)
    q, k, v, scale = _project_qkv(block.attn, h)
    if isinstance(fn, AttentionVariant):
        context.update(_input_context(fn, block.attn, h))
        fn = fn.fn
    out = fn(q, k, v, AttentionContext(scale=scale, grid=grid, **context))
    branch = block.ls_1(getattr(block, "ln_attn", nn.Identity())(_project_out(block.attn, out)))
    if not keep_residual:
        return branch
    x = x + branch
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _recording_qk_attention(maps: dict, index: int):
    """CLIP's own attention softmax(s q k^T) (float32, as the variants' softmax), keeping the matrix in ``maps``."""

    def fn(q, k, v, ctx):
        maps[index] = (q @ k.transpose(-2, -1) * ctx.scale).float().softmax(dim=-1)
        return maps[index].to(v.dtype) @ v

    return fn


def _in_proj(attn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fused q/k/v projection ``(3 width, width)`` and its bias, from either attention class."""
    if getattr(attn, "in_proj_weight", None) is not None:
        return attn.in_proj_weight, attn.in_proj_bias
    # nn.MultiheadAttention with separate projections
    return torch.cat([attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight]), attn.in_proj_bias


def _input_context(variant: AttentionVariant, attn: nn.Module, h: torch.Tensor) -> dict:
    """The block's normalised input and projection, for the variants that ask for them (``takes_input``)."""
    return {"block_input": h, "in_proj": _in_proj(attn)} if variant.takes_input else {}


def _project_qkv(attn: nn.Module, x: torch.Tensor):
    """Per-head q, k, v ``(B, heads, L, head_dim)`` and the logit scale, from either attention class.

    Handles torch's ``nn.MultiheadAttention`` and open_clip's ``Attention`` (with its optional
    qk-norm and scaled-cosine logits).
    """
    qkv = F.linear(x, *_in_proj(attn))
    B, L, _ = qkv.shape
    q, k, v = (t.reshape(B, L, attn.num_heads, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    scale: float | torch.Tensor = q.shape[-1] ** -0.5
    if getattr(attn, "logit_scale", None) is not None:  # scaled cosine attention
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        scale = torch.clamp(attn.logit_scale, max=attn.logit_scale_max).exp()
    elif hasattr(attn, "ln_q"):
        q, k = attn.ln_q(q), attn.ln_k(k)
    return q, k, v, scale


def _project_out(attn: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """Merge heads and apply the block's own output projection (and open_clip's optional extras)."""
    if getattr(attn, "head_scale", None) is not None:
        out = out * attn.head_scale
    out = out.transpose(1, 2).flatten(2)
    out = getattr(attn, "ln_inner", nn.Identity())(out)
    return attn.out_proj(out)

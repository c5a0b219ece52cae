"""Last-block attention variants: SCLIP's correlative self-attention and its relatives.

Every variant is a small pure function ``fn(q, k, v, ctx) -> out`` on per-head tensors of shape
``(batch, heads, tokens, head_dim)``, registered together with one architectural fact: whether the
last block keeps its residual connection and MLP. Token 0 is the CLS token; the rest are patches in
row-major order on the grid ``ctx.grid``.

Adding a variant is one function and one decorator::

    @register_attention("vv", keep_residual=False)
    def vv_attention(q, k, v, ctx):
        return _attend(v @ v.transpose(-2, -1) * ctx.scale, v)

Names: :data:`ATTENTIONS` maps each registered *base* variant's name to it (``list_attentions()`` gives
the same names). A modifier (``list_modifiers()``, e.g. ResCLIP's ``"rcs"`` and ``"sfr"``) is written
after a base with ``+``: ``"naclip+rcs+sfr"``. Such composed names are built on request by
:func:`get_attention` and checked by :func:`is_attention`; they are not keys of :data:`ATTENTIONS`, so
``name in ATTENTIONS`` and ``name in list(ATTENTIONS)`` always agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch

__all__ = [
    "ATTENTIONS",
    "AttentionContext",
    "AttentionVariant",
    "Prior",
    "UnknownAttentionError",
    "get_attention",
    "is_attention",
    "list_attentions",
    "list_modifiers",
    "register_attention",
    "register_modifier",
    "attention_weights",
    "random_projection",
]


@dataclass(frozen=True)
class Prior:
    """A first pass's coarse segmentation of each window, for variants that refine with it (ResCLIP's SFR).

    ``top_query`` ``(B, H, W)`` int64: the query with the highest probability at each pixel of the window;
    ``confidence`` ``(B, H, W)`` float: that probability; ``patch_size``: the encoder's (rows, cols) pixels
    per patch, so a variant can gather the pixels of each patch.
    """

    top_query: torch.Tensor
    confidence: torch.Tensor
    patch_size: tuple[int, int]


@dataclass(frozen=True)
class AttentionContext:
    """What a variant may need beyond q, k, v; the encoder builds one per batch of windows and block.

    The fields after ``grid`` are set only for variants that declare they read them (see
    :class:`AttentionVariant`), so every other variant sees exactly the inputs it was written for.

    Attributes:
        scale: the logit scale s, ``head_dim ** -0.5``, or a per-head tensor for scaled-cosine attention.
        grid: the window's patch grid (rows, cols); token 0 is CLS, then the patches row by row.
        bias: additive logit bias before every softmax, broadcast to ``(B, heads, L, L)`` (``takes_bias``).
        layers: block index -> that block's ``softmax(s q k^T)``, ``(B, heads, L, L)`` (``layers``).
        prior: the first pass's coarse segmentation; None during the first pass itself (``needs_prior``).
        block_input: the block's ``ln_1(x)``, ``(B, L, width)`` (``takes_input``).
        in_proj: the block's q/k/v weight ``(3 width, width)`` and its bias (``takes_input``).
    """

    scale: float | torch.Tensor
    grid: tuple[int, int]
    bias: torch.Tensor | None = None
    layers: Mapping[int, torch.Tensor] | None = None
    prior: Prior | None = None
    block_input: torch.Tensor | None = None
    in_proj: tuple[torch.Tensor, torch.Tensor | None] | None = None


@dataclass(frozen=True)
class AttentionVariant:
    """One attention variant: its function and what the encoder must do around it.

    Attributes:
        name: its registry name, or a composed name such as ``"naclip+rcs+sfr"``.
        fn: ``fn(q, k, v, ctx)``, the attention output from per-head ``(B, heads, L, head_dim)`` tensors
            and an :class:`AttentionContext`.
        keep_residual: the last block keeps ``x + attn(...)`` and ``x + mlp(...)``; False drops both, so the
            block outputs the attention alone.
        description: one line for tables and help texts.
        takes_bias: ``fn`` adds ``ctx.bias`` to its logits before the softmax (and scales them by
            ``ctx.scale``), which lets logit-level modifiers such as ResCLIP's SFR compose with it.
        layers: earlier blocks whose q-k attention ``fn`` reads from ``ctx.layers`` (ResCLIP's RCS).
        needs_prior: ``fn`` runs twice, first without ``ctx.prior``, then with the first pass's coarse
            segmentation (SFR).
        takes_input: ``fn`` reads ``ctx.block_input`` and ``ctx.in_proj`` (e.g. to project with another matrix).
        params: settings of composed or seeded variants, recorded in results files.
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, AttentionContext], torch.Tensor]
    keep_residual: bool
    description: str = ""
    takes_bias: bool = False
    layers: tuple[int, ...] = ()
    needs_prior: bool = False
    takes_input: bool = False
    params: Mapping[str, object] = field(default_factory=dict)


class UnknownAttentionError(KeyError):
    """No attention variant (or modifier) by that name; the message lists what exists."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Registry(Mapping[str, AttentionVariant]):
    """Read-only view of the registered base variants; ``list(ATTENTIONS)`` gives their names.

    Lookup, ``in``, iteration and ``len`` all see the same keys. Composed names are no keys (there are
    infinitely many): a lookup of one raises and points to :func:`get_attention`.
    """

    def __init__(self) -> None:
        self._items: dict[str, AttentionVariant] = {}

    def __getitem__(self, name: str) -> AttentionVariant:
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable key is no name either
            pass
        if isinstance(name, str) and "+" in name:
            raise UnknownAttentionError(
                f"{name!r} composes modifiers onto a base variant: ATTENTIONS holds base variants only "
                f"({', '.join(self._items)}); build it with get_attention({name!r}) (is_attention({name!r}) checks it)"
            )
        raise UnknownAttentionError(f"unknown attention {name!r}; available: {', '.join(self._items)}")

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ATTENTIONS({', '.join(self._items)})"


ATTENTIONS = _Registry()


def register_attention(
    name: str,
    *,
    keep_residual: bool,
    description: str = "",
    takes_bias: bool = False,
    takes_input: bool = False,
    params: Mapping[str, object] | None = None,
):
    """Decorator that adds ``fn`` to :data:`ATTENTIONS` under ``name``.

    ``takes_bias``: ``fn`` adds ``ctx.bias`` (when set) to every logit matrix before its softmax, which
    lets logit-level modifiers such as ResCLIP's SFR compose with it. ``takes_input``: ``fn`` reads the
    block's normalised input and projection weights (``ctx.block_input``, ``ctx.in_proj``).
    ``params``: settings to record in results files.
    """

    def wrap(fn):
        if name in ATTENTIONS._items or "+" in name:
            raise ValueError(
                f"attention {name!r} is already registered"
                if "+" not in name
                else f"attention names may not contain '+' (it joins modifiers): {name!r}"
            )
        ATTENTIONS._items[name] = AttentionVariant(
            name,
            fn,
            keep_residual,
            description or (fn.__doc__ or "").strip(),
            takes_bias=takes_bias,
            takes_input=takes_input,
            params=dict(params or {}),
        )
        return fn

    return wrap


_MODIFIERS: dict[str, Callable[..., AttentionVariant]] = {}


def register_modifier(name: str):
    """Decorator that adds ``build(base: AttentionVariant) -> AttentionVariant`` as ``"<base>+<name>"``."""

    def wrap(build):
        if name in _MODIFIERS:
            raise ValueError(f"modifier {name!r} is already registered")
        _MODIFIERS[name] = build
        return build

    return wrap


def _compose(registry: _Registry, name: str, params: Mapping[str, Mapping] | None = None) -> AttentionVariant:
    base, *mods = name.split("+")
    variant = registry[base]
    unknown = [m for m in mods if m not in _MODIFIERS]
    if unknown or len(set(mods)) != len(mods):
        raise UnknownAttentionError(
            f"unknown attention {name!r}: write a base variant ({', '.join(registry._items)}) followed by distinct "
            f"modifiers from ({', '.join(_MODIFIERS) or 'none registered'}), e.g. 'sclip+rcs+sfr'"
        )
    for m in mods:
        variant = _MODIFIERS[m](variant, **(params or {}).get(m, {}))
    return variant


def get_attention(attention: str | AttentionVariant, params: Mapping[str, Mapping] | None = None) -> AttentionVariant:
    """A variant from its name (``"sclip"``, ``"naclip+rcs+sfr"``) or the variant itself.

    ``params`` maps a modifier named in ``attention`` to its keyword arguments, e.g.
    ``get_attention("naclip+rcs+sfr", {"sfr": {"temp_thd": 0.5}})`` (how a protocol sets per-benchmark weights).
    Raises :class:`UnknownAttentionError` (a ``KeyError``) for a name that is not registered, with the names
    that are, and ``ValueError`` for a modifier that cannot apply to its base.
    """
    if isinstance(attention, AttentionVariant):
        return attention
    if isinstance(attention, str) and "+" in attention:
        return _compose(ATTENTIONS, attention, params)
    return ATTENTIONS[attention]


def is_attention(name: str) -> bool:
    """Whether :func:`get_attention` accepts ``name``: a registered base variant, or one followed by distinct
    registered modifiers that apply to it (``"naclip+rcs+sfr"`` yes, ``"maskclip+sfr"`` no)."""
    try:
        get_attention(name)
    except (KeyError, ValueError):
        return False
    return True


def list_attentions() -> list[str]:
    """The registered base variants' names, in registration order (the same as ``list(ATTENTIONS)``)."""
    return list(ATTENTIONS._items)


def list_modifiers() -> list[str]:
    """The registered modifiers' names (ResCLIP's ``"rcs"``, ``"sfr"``, ...), in registration order.

    A modifier follows a base name with ``+``, e.g. ``"sclip+rcs"``; see :func:`get_attention`.
    """
    return list(_MODIFIERS)


def _attend(logits: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    # softmax in float32 even under fp16 autocast: rows of near-equal logits lose their order in half
    logits = logits.float() if bias is None else logits.float() + bias
    return logits.softmax(dim=-1).to(v.dtype) @ v


@register_attention("vanilla", keep_residual=True, takes_bias=True)
def vanilla(q, k, v, ctx):
    """CLIP's own attention: softmax(s q k^T)."""
    return _attend(q @ k.transpose(-2, -1) * ctx.scale, v, ctx.bias)


@register_attention("maskclip", keep_residual=True)
def maskclip(q, k, v, ctx):
    """MaskCLIP: identity attention (every token keeps its own value), residual and MLP kept."""
    # chongzhou96/MaskCLIP, mmseg/models/backbones/vit.py, TransformerEncoderLayer.forward(return_qkv=True):
    # v = out_proj(v_proj(ln_1(x))) + x, then v + ffn(ln_2(v)); the block's residual and FFN stay.
    return v


@register_attention("maskclip_no_residual", keep_residual=False)
def maskclip_no_residual(q, k, v, ctx):
    """MaskCLIP as ClearCLIP re-implements it: identity attention without the last block's residual and MLP."""
    # mc-lan/ClearCLIP, open_clip/transformer.py, custom_attn(model_type='MaskCLIP') with ignore_residual=True
    return v


@register_attention("sclip", keep_residual=True, takes_bias=True)
def sclip(q, k, v, ctx):
    """SCLIP's correlative self-attention: softmax(s q q^T) + softmax(s k k^T), rows sum to 2."""
    return _attend(q @ q.transpose(-2, -1) * ctx.scale, v, ctx.bias) + _attend(
        k @ k.transpose(-2, -1) * ctx.scale, v, ctx.bias
    )


@register_attention("clearclip", keep_residual=False, takes_bias=True)
def clearclip(q, k, v, ctx):
    """ClearCLIP: softmax(s q q^T) without residual and MLP."""
    return _attend(q @ q.transpose(-2, -1) * ctx.scale, v, ctx.bias)


NACLIP_SIGMA = 5.0


@register_attention("naclip", keep_residual=False, takes_bias=True)
def naclip(q, k, v, ctx):
    """NACLIP: softmax(s k k^T + Gaussian neighbourhood bias on the patch grid), no residual and MLP."""
    bias = gaussian_neighbourhood(ctx.grid, NACLIP_SIGMA, device=k.device)
    return _attend(k @ k.transpose(-2, -1) * ctx.scale + bias, v, ctx.bias)


def gaussian_neighbourhood(grid: tuple[int, int], sigma: float, device=None) -> torch.Tensor:
    """(1 + N, 1 + N) additive bias exp(-d^2 / 2 sigma^2) between patches; 0 in the CLS row and column."""
    rows, cols = grid
    yy, xx = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], dim=1).float()
    bias = torch.zeros(1 + rows * cols, 1 + rows * cols, device=device)
    bias[1:, 1:] = torch.exp(-torch.cdist(pos, pos).square() / (2 * sigma**2))
    return bias


# The projection ablation (SCLIP's "which projection" question) and the residual question: each half of CSA
# alone, and CSA or k-k without the residual and MLP. They reuse the functions above (q-q alone is ClearCLIP's
# attention); q and k are the block's own affine projections ln_1(x) W^T + b, in_proj_bias included.
def _kk(q, k, v, ctx):
    return _attend(k @ k.transpose(-2, -1) * ctx.scale, v, ctx.bias)


register_attention(
    "qq",
    keep_residual=True,
    takes_bias=True,
    description="q-q only: softmax(s q q^T), residual and MLP kept (SCLIP's first half)",
)(clearclip)
register_attention(
    "kk",
    keep_residual=True,
    takes_bias=True,
    description="k-k only: softmax(s k k^T), residual and MLP kept (SCLIP's second half)",
)(_kk)
register_attention(
    "kk_no_residual",
    keep_residual=False,
    takes_bias=True,
    description="k-k only, without the last block's residual and MLP",
)(_kk)
register_attention(
    "sclip_no_residual",
    keep_residual=False,
    takes_bias=True,
    description="SCLIP's CSA without the last block's residual and MLP (the CSA term alone)",
)(sclip)


def random_projection(seed: int = 0, keep_residual: bool = True) -> AttentionVariant:
    """Correlative attention through a seeded random projection: softmax(s z z^T) with z = ln_1(x) R^T + r.

    R has the shape of the block's W_q and r that of its bias b_q, so z is split into heads like q.
    Both are drawn from ``torch.Generator().manual_seed(seed)`` as standard normals in float32 (R first,
    then r) and scaled to the block's own ``W_q.std()`` and ``b_q.std()``: a random *affine* map of the
    scale of the real one, its bias drawn like its matrix (zero where the block's q bias is zero). s and
    any logit bias are those of the q-k attention; no qk-norm or cosine normalisation is applied to z
    (CLIP's ViTs have none). Seed 0 is registered as ``"random_proj"`` (residual and MLP kept) and
    ``"random_proj_no_residual"``; other seeds are named ``random_proj[_no_residual]_seed<seed>``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    draws: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # standard normals per W_q shape, drawn once

    def fn(q, k, v, ctx):
        weight, bias = ctx.in_proj
        w_q = weight[: weight.shape[0] // 3]
        if w_q.shape not in draws:
            generator = torch.Generator().manual_seed(seed)
            draws[w_q.shape] = (
                torch.randn(w_q.shape, generator=generator),
                torch.randn(w_q.shape[0], generator=generator),
            )
        r_w, r_b = draws[w_q.shape]
        x = ctx.block_input
        proj = (r_w * w_q.detach().float().std().cpu()).to(x.device, x.dtype)
        offset = (
            None if bias is None else (r_b * bias[: w_q.shape[0]].detach().float().std().cpu()).to(x.device, x.dtype)
        )
        z = torch.nn.functional.linear(x, proj, offset)
        z = z.reshape(*z.shape[:2], q.shape[1], -1).transpose(1, 2)  # (B, heads, L, head_dim) like q
        return _attend(z @ z.transpose(-2, -1) * ctx.scale, v, ctx.bias)

    name = "random_proj" + ("" if keep_residual else "_no_residual") + (f"_seed{seed}" if seed else "")
    return AttentionVariant(
        name,
        fn,
        keep_residual,
        (random_projection.__doc__ or "").split("\n")[0],
        takes_bias=True,
        takes_input=True,
        params={"random_seed": seed},
    )


for _keep in (True, False):
    _variant = random_projection(0, _keep)
    register_attention(
        _variant.name,
        keep_residual=_keep,
        description=_variant.description,
        takes_bias=True,
        takes_input=True,
        params=_variant.params,
    )(_variant.fn)
del _keep, _variant


def attention_weights(
    name: str | AttentionVariant, q: torch.Tensor, k: torch.Tensor, ctx: AttentionContext
) -> torch.Tensor:
    """The (batch, heads, L, L) attention matrix of a variant, for plots.

    Feeding the identity as ``v`` turns ``A @ v`` into ``A``, so the plot shows exactly the function
    the encoder runs, with no second definition of any variant.
    """
    eye = torch.eye(q.shape[-2], dtype=q.dtype, device=q.device).expand(*q.shape[:-1], q.shape[-2])
    return get_attention(name).fn(q, k, eye, ctx)

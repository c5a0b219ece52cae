"""DenseEncoder: agreement with open_clip, other architectures, positional-embedding resizing."""

from __future__ import annotations

import math

import open_clip
import pytest
import torch

import sclip_lib as sl
from sclip_lib.encoder import resize_positional_embedding


@pytest.mark.parametrize("backbone", ["vit_b16", "vit_b32"])
def test_vanilla_cls_equals_open_clip_encode_image(backbone, request):
    model = request.getfixturevalue(backbone)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours = sl.DenseEncoder(model, "vanilla")(images)[:, 0]
        theirs = model.encode_image(images)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def tiny_clip(**vision):
    """A small open_clip CLIP of another width, depth, patch size and attention class."""
    cfg = dict(image_size=64, patch_size=8, width=64, head_width=16, layers=3, mlp_ratio=2.0, **vision)
    text = dict(context_length=16, vocab_size=100, width=32, heads=4, layers=1)
    torch.manual_seed(1)
    return open_clip.CLIP(embed_dim=24, vision_cfg=cfg, text_cfg=text).eval()


@pytest.mark.parametrize(
    "vision",
    [
        {},
        {"block_type": "custom"},
        {"qk_norm": True},
        {"scale_heads": True, "scale_attn_inner": True},
        {"ls_init_value": 0.5},
    ],
    ids=["mha", "custom", "qk_norm", "head_scale+inner_norm", "layer_scale"],
)
def test_vanilla_last_block_is_the_models_own_block(vision):
    """On every attention class open_clip has, 'vanilla' must reproduce the unchanged block exactly."""
    model = tiny_clip(**vision)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = sl.DenseEncoder(model, "vanilla")(images)[:, 0]
        theirs = model.encode_image(images)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["vanilla", "maskclip", "sclip", "clearclip", "naclip"])
def test_every_variant_runs_on_a_small_custom_vit(attention):
    model = tiny_clip(qk_norm=True)
    feats = sl.DenseEncoder(model, attention).dense_features(torch.randn(3, 3, 64, 40))
    assert feats.shape == (3, 24, 8, 5)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(3, 8, 5), atol=1e-5, rtol=0)


def test_new_variant_is_one_function_and_one_entry(vit_b32):
    name = "test_vv"

    @sl.register_attention(name, keep_residual=False)
    def vv(q, k, v, ctx):
        return (v @ v.transpose(-2, -1) * ctx.scale).softmax(-1) @ v

    try:
        assert name in sl.ATTENTIONS
        out = sl.DenseEncoder(vit_b32, name)(torch.randn(1, 3, 224, 224))
        assert out.shape == (1, 50, 512) and torch.isfinite(out).all()
    finally:
        sl.ATTENTIONS._items.pop(name)


def test_model_is_not_modified_and_encoders_share_it(vit_b32):
    images = torch.randn(1, 3, 224, 224)
    before = vit_b32.encode_image(images)
    sl.DenseEncoder(vit_b32, "sclip")(images)
    sl.DenseEncoder(vit_b32, "maskclip")(images)
    torch.testing.assert_close(vit_b32.encode_image(images), before)


def test_positional_embedding_native_grid_is_unchanged(vit_b16):
    enc = sl.DenseEncoder(vit_b16, "sclip")
    torch.testing.assert_close(enc.positional_embedding((14, 14), torch.float32), vit_b16.visual.positional_embedding)


def test_positional_embedding_resize_keeps_cls_and_reproduces_smooth_fields():
    """Bicubic resizing keeps constants constant and a linear ramp linear away from the border."""
    model = tiny_clip()  # native grid 8x8
    pos = model.visual.positional_embedding
    with torch.no_grad():
        rows = torch.arange(8.0).repeat_interleave(8)
        pos[1:, 0] = 3.0  # constant field
        pos[1:, 1] = rows  # linear ramp along rows
    enc = sl.DenseEncoder(model, "sclip")
    new = enc.positional_embedding((16, 12), torch.float32)
    assert new.shape == (1 + 16 * 12, pos.shape[1])
    torch.testing.assert_close(new[0], pos[0])
    torch.testing.assert_close(new[1:, 0], torch.full((192,), 3.0), atol=1e-5, rtol=0)
    ramp = new[1:, 1].reshape(16, 12)
    # a field that varies only along rows stays so, keeps its order, and keeps its range
    torch.testing.assert_close(ramp, ramp[:, :1].expand(16, 12), atol=1e-5, rtol=0)
    assert (ramp[1:, 0] >= ramp[:-1, 0] - 1e-5).all()
    assert ramp.min() > -0.5 and ramp.max() < 7.5


def cubic_resample_matrix(n_in: int, n_out: int, scale: float) -> torch.Tensor:
    """(n_out, n_in) matrix of 1-D bicubic resampling written from the formulas: Keys' cubic kernel with
    a = -0.75, source coordinate (i + 0.5) / scale - 0.5, taps outside the axis read its nearest end."""

    def keys(t: float) -> float:
        a, t = -0.75, abs(t)
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        if t < 2:
            return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
        return 0.0

    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        src = (i + 0.5) / scale - 0.5
        base = math.floor(src)
        for tap in range(base - 1, base + 3):
            m[i, min(max(tap, 0), n_in - 1)] += keys(src - tap)
    return m


@pytest.mark.parametrize("grid", [(21, 31), (14, 28), (9, 5)])
def test_positional_embedding_follows_the_authors_scale_factor_rule(vit_b16, grid):
    """SCLIP/ClearCLIP/NACLIP ``interpolate_pos_encoding``: bicubic with scale (g + 0.1) / 14 per axis.

    That samples the 14-grid at (i + 0.5) * 14 / (g + 0.1) - 0.5, not at an exact g-point spacing; the
    explicit-size rule (MaskCLIP's ``resize_pos_embed``) samples at (i + 0.5) * 14 / g - 0.5.
    """
    pos = vit_b16.visual.positional_embedding.double()
    patches = pos[1:].reshape(14, 14, -1)
    for rule, scales in (("scale_factor", [(g + 0.1) / 14 for g in grid]), ("size", [g / 14 for g in grid])):
        rows, cols = (cubic_resample_matrix(14, g, s) for g, s in zip(grid, scales))
        expected = torch.einsum("ia,jb,abd->ijd", rows, cols, patches).reshape(grid[0] * grid[1], -1)
        ours = sl.DenseEncoder(vit_b16, "sclip", pos_resize=rule).positional_embedding(grid, torch.float32)
        torch.testing.assert_close(ours[0].double(), pos[0])
        torch.testing.assert_close(ours[1:].double(), expected, atol=1e-5, rtol=1e-5)
    a = sl.DenseEncoder(vit_b16, "sclip").positional_embedding(grid, torch.float32)
    b = sl.DenseEncoder(vit_b16, "sclip", pos_resize="size").positional_embedding(grid, torch.float32)
    assert not torch.allclose(a, b, atol=1e-4)  # the two rules really differ on these grids


def ramp(rows: int, cols: int, dtype=torch.float64) -> torch.Tensor:
    """``(1, 2, rows, cols)``: channel 0 holds each entry's row index, channel 1 its column index."""
    r, c = torch.meshgrid(torch.arange(rows, dtype=dtype), torch.arange(cols, dtype=dtype), indexing="ij")
    return torch.stack([r, c])[None]


def ramp_resized(G: int, grid: tuple[int, int], scales: tuple[float, float]) -> torch.Tensor:
    """``(2, g0, g1)``: the G x G ramp bicubically resampled with ``scales`` per axis, from the formulas.

    Channel 0 varies only along rows: each output row i holds the Keys-kernel blend of the row indices
    around the source coordinate (i + 0.5) / scale - 0.5 (the index itself where the four taps lie inside
    the axis and the coordinate is a whole or half number). Channel 1 likewise along columns.
    """
    index = torch.arange(G, dtype=torch.float64)
    along_rows, along_cols = (cubic_resample_matrix(G, g, s) @ index for g, s in zip(grid, scales))
    return torch.stack([along_rows[:, None].expand(grid), along_cols[None, :].expand(grid)])


# ViT-B/16's 14x14 grid to a square 28x28 (a 448 window) and a non-square 21x30 (a 336x480 window)
@pytest.mark.parametrize("grid", [(28, 28), (21, 30)], ids=["square", "non-square"])
def test_positional_embedding_resize_samples_where_the_authors_rule_does(grid):
    """Known answer for the authors' rule: bicubic with ``scale_factor=(g + 0.1) / G`` per axis, on a ramp.

    The rule samples the G-axis at (i + 0.5) * G / (g + 0.1) - 0.5; an explicit-size resize (MaskCLIP's)
    at (i + 0.5) * G / g - 0.5. On the ramp e[r, c] = (r, c) the two differ by up to 0.05 of a patch
    here (on random weights the difference is within 5e-4), so the check below cannot pass for the
    wrong rule.
    """
    G = 14
    out = resize_positional_embedding(ramp(G, G), grid)
    assert tuple(out.shape) == (1, 2, *grid)
    expected = ramp_resized(G, grid, tuple((g + 0.1) / G for g in grid))
    torch.testing.assert_close(out[0], expected, atol=1e-9, rtol=0)
    # the same check fails for an explicit-size resize, and the expected values tell them apart
    sized = resize_positional_embedding(ramp(G, G), grid, rule="size")
    torch.testing.assert_close(sized[0], ramp_resized(G, grid, tuple(g / G for g in grid)), atol=1e-9, rtol=0)
    for axis in (0, 1):
        assert (sized[0, axis] - expected[axis]).abs().max() > 0.02


@pytest.mark.parametrize("grid", [(20, 20), (12, 27)], ids=["square", "non-square"])
def test_encoder_positional_embedding_is_the_ramp_resized_by_the_rule(grid):
    """The same known answer through DenseEncoder: the CLS entry is kept and the resized patches are
    flattened row-major (a transposed or explicit-size resize fails the non-square grid)."""
    model = tiny_clip()  # native grid 8x8
    pos = model.visual.positional_embedding
    G = 8
    with torch.no_grad():
        pos[1:, :2] = ramp(G, G, pos.dtype)[0].permute(1, 2, 0).reshape(G * G, 2)
    new = sl.DenseEncoder(model, "sclip").positional_embedding(grid, torch.float32)
    torch.testing.assert_close(new[0], pos[0])
    field = new[1:, :2].reshape(*grid, 2).permute(2, 0, 1).double()
    torch.testing.assert_close(field, ramp_resized(G, grid, tuple((g + 0.1) / G for g in grid)), atol=1e-5, rtol=0)


def test_unknown_positional_resize_rule(vit_b16):
    with pytest.raises(ValueError, match="pos_resize must be one of"):
        sl.DenseEncoder(vit_b16, "sclip", pos_resize="nearest")


@pytest.mark.parametrize(
    "size,grid", [((224, 224), (14, 14)), ((160, 224), (10, 14)), ((100, 37), (6, 2)), ((16, 16), (1, 1))]
)
def test_dense_features_on_any_window_size(vit_b16, size, grid):
    feats = sl.DenseEncoder(vit_b16, "sclip").dense_features(torch.randn(1, 3, *size))
    assert feats.shape == (1, 512, *grid)


def test_unsupported_towers_are_named():
    model = open_clip.create_model("RN50", pretrained=None)
    with pytest.raises(TypeError, match="not an open_clip VisionTransformer"):
        sl.DenseEncoder(model, "sclip")


def test_scaled_cosine_attention_logits():
    """open_clip 3.3 cannot run a scaled-cosine ViT itself (torch.bmm on 4-D tensors), so the q/k
    reading for that class is checked on its own against the formula: exp(min(ls, max)) * cos(q, k)."""
    from open_clip.transformer import Attention

    from sclip_lib.encoder import _project_qkv

    attn = Attention(32, num_heads=4, scaled_cosine=True).eval()
    with torch.no_grad():
        attn.logit_scale.copy_(torch.tensor([0.5, 1.0, 2.0, 9.0]).view(4, 1, 1))
    x = torch.randn(2, 5, 32)
    q, k, v, scale = _project_qkv(attn, x)
    qkv = x @ attn.in_proj_weight.T + attn.in_proj_bias
    q_raw = qkv[..., :32].reshape(2, 5, 4, 8).transpose(1, 2)
    k_raw = qkv[..., 32:64].reshape(2, 5, 4, 8).transpose(1, 2)
    cos = torch.nn.functional.cosine_similarity(q_raw[..., :, None, :], k_raw[..., None, :, :], dim=-1)
    expected = torch.tensor([0.5, 1.0, 2.0, attn.logit_scale_max]).exp().view(4, 1, 1) * cos
    torch.testing.assert_close(q @ k.transpose(-2, -1) * scale, expected, atol=1e-5, rtol=1e-5)

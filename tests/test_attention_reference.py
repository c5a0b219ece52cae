"""The library's last block against a reference written here from the formulas, head by head.

The reference shares no code with sclip_lib: it reads the block's weights directly, splits heads by
hand, and loops over heads and batch items with explicit softmaxes. The input to the last block is
captured from open_clip's own forward pass with a hook.
"""

from __future__ import annotations

import math

import pytest
import torch

import sclip_lib as sl

VARIANTS = ["vanilla", "maskclip", "maskclip_no_residual", "sclip", "clearclip", "naclip"]
# MaskCLIP's own code keeps the residual and FFN around v (chongzhou96/MaskCLIP, mmseg/models/backbones/vit.py);
# ClearCLIP's re-implementation drops both.
KEEP_RESIDUAL = {
    "vanilla": True,
    "maskclip": True,
    "maskclip_no_residual": False,
    "sclip": True,
    "clearclip": False,
    "naclip": False,
}


def softmax_rows(m: torch.Tensor) -> torch.Tensor:
    e = torch.exp(m - m.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def naclip_bias(rows: int, cols: int, sigma: float = 5.0) -> torch.Tensor:
    n = rows * cols
    bias = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            dy, dx = i // cols - j // cols, i % cols - j % cols
            bias[i + 1, j + 1] = math.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma))
    return bias


def reference_last_block(block, x: torch.Tensor, variant: str, grid: tuple[int, int]) -> torch.Tensor:
    """Last-block output for one variant, float64, from the formulas in the reference (section 1 and 6)."""
    attn = block.attn
    W, b = attn.in_proj_weight.double(), attn.in_proj_bias.double()
    heads = attn.num_heads
    width = W.shape[1]
    d = width // heads
    s = d**-0.5
    ln1 = torch.nn.functional.layer_norm(
        x.double(), (width,), block.ln_1.weight.double(), block.ln_1.bias.double(), block.ln_1.eps
    )
    out = torch.zeros_like(ln1)
    bias = naclip_bias(*grid) if variant == "naclip" else None
    for n in range(x.shape[0]):
        head_outputs = []
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            q = ln1[n] @ W[:width][rows].T + b[:width][rows]
            k = ln1[n] @ W[width : 2 * width][rows].T + b[width : 2 * width][rows]
            v = ln1[n] @ W[2 * width :][rows].T + b[2 * width :][rows]
            if variant == "vanilla":
                A = softmax_rows(s * q @ k.T)
            elif variant in ("maskclip", "maskclip_no_residual"):
                A = torch.eye(q.shape[0], dtype=q.dtype)
            elif variant == "sclip":
                A = softmax_rows(s * q @ q.T) + softmax_rows(s * k @ k.T)
            elif variant == "clearclip":
                A = softmax_rows(s * q @ q.T)
            elif variant == "naclip":
                A = softmax_rows(s * k @ k.T + bias)
            head_outputs.append(A @ v)
        merged = torch.cat(head_outputs, dim=1)
        out[n] = merged @ attn.out_proj.weight.double().T + attn.out_proj.bias.double()
    if not KEEP_RESIDUAL[variant]:
        return out
    y = x.double() + out
    ln2 = torch.nn.functional.layer_norm(
        y, (width,), block.ln_2.weight.double(), block.ln_2.bias.double(), block.ln_2.eps
    )
    fc = ln2 @ block.mlp.c_fc.weight.double().T + block.mlp.c_fc.bias.double()
    act = (
        fc * torch.sigmoid(1.702 * fc) if type(block.mlp.gelu).__name__ == "QuickGELU" else torch.nn.functional.gelu(fc)
    )
    return y + act @ block.mlp.c_proj.weight.double().T + block.mlp.c_proj.bias.double()


def capture_last_block_input(model, images: torch.Tensor) -> torch.Tensor:
    captured = {}
    block = model.visual.transformer.resblocks[-1]
    handle = block.register_forward_pre_hook(lambda mod, args: captured.setdefault("x", args[0].detach().clone()))
    with torch.no_grad():
        model.encode_image(images)
    handle.remove()
    return captured["x"]


@pytest.mark.parametrize("backbone", ["vit_b16", "vit_b32"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_last_block_matches_reference(backbone, variant, request):
    model = request.getfixturevalue(backbone)
    images = torch.randn(2, 3, 224, 224)
    x = capture_last_block_input(model, images)
    enc = sl.DenseEncoder(model, variant)
    grid = enc.grid(224, 224)
    with torch.no_grad():
        ours = enc.last_block(x, grid)
    ref = reference_last_block(model.visual.transformer.resblocks[-1], x, variant, grid)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_full_encoder_tokens_match_reference(vit_b32, variant):
    """Whole encoder: the unchanged blocks, the swapped block, then ln_post and proj on every token."""
    images = torch.randn(1, 3, 224, 224)
    x = capture_last_block_input(vit_b32, images)
    v = vit_b32.visual
    ref = reference_last_block(v.transformer.resblocks[-1], x, variant, (7, 7))
    ref = torch.nn.functional.layer_norm(
        ref, (ref.shape[-1],), v.ln_post.weight.double(), v.ln_post.bias.double(), v.ln_post.eps
    )
    ref = ref @ v.proj.double()
    with torch.no_grad():
        ours = sl.DenseEncoder(vit_b32, variant)(images)
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)


def test_sclip_rows_sum_to_two_without_renormalisation(vit_b32):
    images = torch.randn(1, 3, 224, 224)
    A = sl.DenseEncoder(vit_b32, "sclip").attention_maps(images)
    torch.testing.assert_close(A.sum(-1), torch.full(A.shape[:-1], 2.0), atol=1e-5, rtol=0)
    V = sl.DenseEncoder(vit_b32, "vanilla").attention_maps(images)
    torch.testing.assert_close(V.sum(-1), torch.ones(V.shape[:-1]), atol=1e-5, rtol=0)


def test_registry_lists_variants_and_accepts_new_one():
    assert set(VARIANTS) <= set(sl.ATTENTIONS)
    for name in VARIANTS:
        assert sl.ATTENTIONS[name].keep_residual is KEEP_RESIDUAL[name]
    with pytest.raises(KeyError, match="unknown attention 'nope'.*sclip"):
        sl.ATTENTIONS["nope"]
    with pytest.raises(ValueError, match="already registered"):
        sl.register_attention("sclip", keep_residual=True)(lambda q, k, v, ctx: v)

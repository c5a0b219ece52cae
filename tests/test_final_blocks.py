"""The variant in the last N blocks, and the projection-ablation variants, against a float64 reference.

The reference is written here from the formulas and shares no code with sclip_lib: it reads each block's
weights, splits heads by hand and loops over batch items and heads. The model is a small untrained open_clip
ViT whose biases are set to random values, so that a variant that dropped ``in_proj_bias`` would fail.
"""

from __future__ import annotations

import open_clip
import pytest
import torch

import sclip_lib as sl
from sclip_lib.evaluation.loop import result_stem

DEPTH = 4
# Variant -> does the LAST block keep its residual and MLP (modified blocks before it always do).
KEEP_RESIDUAL = {
    "vanilla": True,
    "maskclip": True,
    "sclip": True,
    "clearclip": False,
    "qq": True,
    "kk": True,
    "kk_no_residual": False,
    "sclip_no_residual": False,
    "random_proj": True,
    "random_proj_no_residual": False,
}


@pytest.fixture(scope="module")
def small_vit():
    cfg = dict(image_size=64, patch_size=16, width=64, head_width=16, layers=DEPTH, mlp_ratio=2.0)
    text = dict(context_length=16, vocab_size=100, width=32, heads=4, layers=1)
    torch.manual_seed(3)
    model = open_clip.CLIP(embed_dim=24, vision_cfg=cfg, text_cfg=text).eval()
    with torch.no_grad():  # untrained open_clip has zero biases; make them matter
        for name, p in model.visual.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
    return model


def softmax_rows(m: torch.Tensor) -> torch.Tensor:
    e = torch.exp(m - m.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def layer_norm(x, ln):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), ln.weight.double(), ln.bias.double(), ln.eps)


def random_affine(W: torch.Tensor, b: torch.Tensor, seed: int):
    """The documented random stand-in for (W_q, b_q): standard normals from the seed, scaled to their std."""
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(W.shape, generator=g) * W.float().std()
    r = torch.randn(b.shape, generator=g) * b.float().std()
    return R.double(), r.double()


def reference_attention(block, ln1: torch.Tensor, variant: str) -> list[torch.Tensor]:
    """Per batch item, the (heads, L, L) attention of ``variant`` on the block's normalised input ``ln1``."""
    attn = block.attn
    W, b = attn.in_proj_weight.double(), attn.in_proj_bias.double()
    width = W.shape[1]
    heads = attn.num_heads
    d = width // heads
    s = d**-0.5
    Wq, Wk = W[:width], W[width : 2 * width]
    bq, bk = b[:width], b[width : 2 * width]
    if variant.startswith("random_proj"):
        R, r = random_affine(attn.in_proj_weight[:width], attn.in_proj_bias[:width], 0)
    maps = []
    for n in range(ln1.shape[0]):
        per_head = []
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            q = ln1[n] @ Wq[rows].T + bq[rows]
            k = ln1[n] @ Wk[rows].T + bk[rows]
            if variant == "vanilla":
                A = softmax_rows(s * q @ k.T)
            elif variant == "maskclip":
                A = torch.eye(q.shape[0], dtype=q.dtype)
            elif variant in ("sclip", "sclip_no_residual"):
                A = softmax_rows(s * q @ q.T) + softmax_rows(s * k @ k.T)
            elif variant in ("clearclip", "qq"):
                A = softmax_rows(s * q @ q.T)
            elif variant in ("kk", "kk_no_residual"):
                A = softmax_rows(s * k @ k.T)
            elif variant.startswith("random_proj"):
                z = ln1[n] @ R[rows].T + r[rows]
                A = softmax_rows(s * z @ z.T)
            per_head.append(A)
        maps.append(torch.stack(per_head))
    return maps


def reference_block(block, x: torch.Tensor, variant: str, keep_residual: bool):
    """One block in float64 with ``variant``'s attention; returns (output, attention (B, heads, L, L))."""
    attn = block.attn
    width = x.shape[-1]
    heads = attn.num_heads
    d = width // heads
    W, b = attn.in_proj_weight.double(), attn.in_proj_bias.double()
    ln1 = layer_norm(x.double(), block.ln_1)
    maps = reference_attention(block, ln1, variant)
    out = torch.zeros_like(ln1)
    for n in range(x.shape[0]):
        v = ln1[n] @ W[2 * width :].T + b[2 * width :]
        merged = torch.cat([maps[n][h] @ v[:, h * d : (h + 1) * d] for h in range(heads)], dim=1)
        out[n] = merged @ attn.out_proj.weight.double().T + attn.out_proj.bias.double()
    if not keep_residual:
        return out, torch.stack(maps)
    y = x.double() + out
    fc = layer_norm(y, block.ln_2) @ block.mlp.c_fc.weight.double().T + block.mlp.c_fc.bias.double()
    act = (
        torch.nn.functional.gelu(fc) if type(block.mlp.gelu).__name__ != "QuickGELU" else fc * torch.sigmoid(1.702 * fc)
    )
    return y + act @ block.mlp.c_proj.weight.double().T + block.mlp.c_proj.bias.double(), torch.stack(maps)


def block_input(model, images: torch.Tensor, index: int) -> torch.Tensor:
    """The input of block ``index`` in open_clip's own (unmodified) forward pass, batch-first."""
    captured = {}
    block = model.visual.transformer.resblocks[index]
    handle = block.register_forward_pre_hook(lambda mod, args: captured.setdefault("x", args[0].detach().clone()))
    with torch.no_grad():
        model.encode_image(images)
    handle.remove()
    x = captured["x"]
    return x if getattr(model.visual.transformer, "batch_first", True) else x.transpose(0, 1)


def reference_encoder(model, images: torch.Tensor, variant: str, n: int):
    """All output tokens (after ln_post and proj) with ``variant`` in the last ``n`` blocks, and the
    attention of each modified block by index."""
    blocks = model.visual.transformer.resblocks
    x = block_input(model, images, DEPTH - n).double()
    maps = {}
    for i in range(DEPTH - n, DEPTH):
        x, maps[i] = reference_block(blocks[i], x, variant, keep_residual=i < DEPTH - 1 or KEEP_RESIDUAL[variant])
    v = model.visual
    return layer_norm(x, v.ln_post) @ v.proj.double(), maps


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("variant", list(KEEP_RESIDUAL))
def test_variant_in_the_last_n_blocks_matches_reference(small_vit, variant, n):
    images = torch.randn(2, 3, 64, 64)
    ref, ref_maps = reference_encoder(small_vit, images, variant, n)
    enc = sl.DenseEncoder(small_vit, variant, final_blocks=n)
    assert list(enc.modified_blocks) == list(range(DEPTH - n, DEPTH))
    with torch.no_grad():
        ours = enc(images)
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-5)
    for i, expected in ref_maps.items():  # every modified block's attention, with its input from the blocks before
        torch.testing.assert_close(enc.attention_maps(images, layer=i).double(), expected, atol=1e-5, rtol=1e-5)


def test_vanilla_in_several_blocks_is_the_plain_model(small_vit):
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = small_vit.encode_image(images)
        for n in range(1, DEPTH + 1):
            torch.testing.assert_close(
                sl.DenseEncoder(small_vit, "vanilla", final_blocks=n)(images)[:, 0], plain, atol=1e-5, rtol=1e-5
            )


def test_more_final_blocks_change_the_output(small_vit):
    """N is really used: each extra modified block changes SCLIP's tokens."""
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs = [sl.DenseEncoder(small_vit, "sclip", final_blocks=n)(images) for n in (1, 2, 3)]
    assert not torch.allclose(outs[0], outs[1], atol=1e-3) and not torch.allclose(outs[1], outs[2], atol=1e-3)


def test_one_final_block_is_the_earlier_path_bit_for_bit(small_vit):
    """final_blocks=1 composes exactly the stages the encoder had before the option existed."""
    images = torch.randn(2, 3, 64, 64)
    for variant in ("sclip", "naclip", sl.resclip("naclip", layers=(1, 2), use_sfr=False)):
        enc = sl.DenseEncoder(small_vit, variant, final_blocks=1)
        with torch.no_grad():
            grid = enc.grid(64, 64)
            if enc.variant.layers:
                x, layers = enc.run_blocks_collecting(enc.embed(images), DEPTH - 1, enc.variant.layers)
            else:
                x, layers = enc.run_blocks(enc.embed(images), DEPTH - 1), None
            old = enc.visual.ln_post(enc.last_block(x, grid, layers=layers)) @ enc.visual.proj
            assert torch.equal(enc(images), old)


def test_layers_before_the_modified_blocks_see_the_plain_model(small_vit):
    images = torch.randn(1, 3, 64, 64)
    enc = sl.DenseEncoder(small_vit, "sclip", final_blocks=2)
    x = block_input(small_vit, images, 1).double()
    _, expected = reference_block(small_vit.visual.transformer.resblocks[1], x, "vanilla", True)
    torch.testing.assert_close(
        enc.attention_maps(images, layer=1, attention="vanilla").double(), expected, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("n", [0, DEPTH + 1, -1, 1.5, True, "2"])
def test_bad_final_blocks_name_the_valid_range(small_vit, n):
    with pytest.raises(ValueError, match=f"final_blocks must be an int from 1 to {DEPTH}"):
        sl.DenseEncoder(small_vit, "sclip", final_blocks=n)


@pytest.mark.parametrize(
    "attention,what", [("naclip+rcs", "earlier blocks"), ("sclip+sfr", "prior"), ("naclip+rcs+sfr", "earlier blocks")]
)
def test_rcs_and_sfr_refuse_several_blocks(vit_b32, attention, what):
    with pytest.raises(ValueError, match=f"{what}.*final_blocks=1"):
        sl.DenseEncoder(vit_b32, attention, final_blocks=2)
    assert sl.DenseEncoder(vit_b32, attention, final_blocks=1).final_blocks == 1


# -- projection ablation: every variant projects with the block's bias, like SCLIP ------------------------
def test_sclip_is_the_sum_of_the_qq_and_kk_variants(small_vit):
    images = torch.randn(1, 3, 64, 64)
    enc = sl.DenseEncoder(small_vit, "sclip")
    maps = {a: enc.attention_maps(images, attention=a) for a in ("sclip", "qq", "kk")}
    torch.testing.assert_close(maps["sclip"], maps["qq"] + maps["kk"], atol=1e-6, rtol=0)


def test_projection_variants_use_the_projection_bias(small_vit):
    """With the q/k bias zeroed the q-q, k-k and random maps change: the bias is in every one of them."""
    import copy

    images = torch.randn(1, 3, 64, 64)
    unbiased = copy.deepcopy(small_vit)
    with torch.no_grad():
        unbiased.visual.transformer.resblocks[-1].attn.in_proj_bias[:128].zero_()  # q and k halves (width 64)
    for variant in ("qq", "kk", "random_proj"):
        a = sl.DenseEncoder(small_vit, variant).attention_maps(images)
        b = sl.DenseEncoder(unbiased, variant).attention_maps(images)
        assert (a - b).abs().max() > 1e-3, variant


def test_random_projection_seeds_and_names(small_vit):
    images = torch.randn(1, 3, 64, 64)
    enc = sl.DenseEncoder(small_vit, "sclip")
    seed0 = enc.attention_maps(images, attention="random_proj")
    torch.testing.assert_close(enc.attention_maps(images, attention=sl.attention.random_projection(0)), seed0)
    other = sl.attention.random_projection(7)
    assert other.name == "random_proj_seed7" and other.params == {"random_seed": 7}
    assert sl.attention.random_projection(7, keep_residual=False).name == "random_proj_no_residual_seed7"
    assert (enc.attention_maps(images, attention=other) - seed0).abs().max() > 1e-3
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        sl.attention.random_projection(-1)


# -- Segmenter, results files -----------------------------------------------------------------------
def test_segmenter_records_final_blocks(vit_b32):
    default = sl.Segmenter(vit_b32, ["cat", "dog"], templates=["a {}."])
    assert default.describe()["final_blocks"] == 1 and default.encoder.final_blocks == 1
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], "sclip", templates=["a {}."], final_blocks=3)
    assert seg.describe()["final_blocks"] == 3 and list(seg.encoder.modified_blocks) == [9, 10, 11]
    assert seg.predict(torch.rand(3, 64, 80)).shape == (64, 80)
    with pytest.raises(ValueError, match="final_blocks must be an int from 1 to 12"):
        sl.Segmenter(vit_b32, ["cat"], final_blocks=13)
    with pytest.raises(ValueError, match="final_blocks must be a positive integer"):
        sl.Settings(final_blocks=0)


def test_benchmark_segmenter_passes_final_blocks_and_leaves_the_protocol(vit_b32):
    assert sl.BENCHMARKS["voc20"].segmenter(vit_b32, "sclip").protocol == "sclip"
    seg = sl.BENCHMARKS["voc20"].segmenter(vit_b32, "sclip", final_blocks=2)
    assert seg.encoder.final_blocks == 2 and seg.protocol is None  # its numbers are not the paper's setting


def test_result_file_names_tell_final_blocks_apart():
    settings = {"attention": "sclip", "pamr": False, "final_blocks": 1}
    assert result_stem("voc20", settings, "ViT-B-16", 10) == "voc20_sclip_ViT-B-16_limit10"
    assert (
        result_stem("voc20", {**settings, "final_blocks": 3}, "ViT-B-16", 10) == "voc20_sclip_ViT-B-16_final3_limit10"
    )


def test_evaluate_passes_final_blocks_into_the_results_file(vit_b32, tmp_path):
    import numpy as np

    from tests.conftest import ONE_TEMPLATE
    from tests.test_benchmark_loading import generated_voc, hub_copy

    images, masks, _ = generated_voc(np.random.default_rng(1), n=1, size=(64, 64))
    source = hub_copy(tmp_path / "voc", "voc21", images, masks)
    r = sl.evaluate(
        "sclip",
        "voc21",
        model=vit_b32,
        source=source,
        limit=1,
        out=tmp_path / "res",
        progress=False,
        templates=ONE_TEMPLATE,
        short_side=224,
        final_blocks=2,
    )
    assert r.settings["final_blocks"] == 2
    stem = f"voc21_sclip_ViT-B-32-untrained_final2_limit1_{r.settings_hash}"  # the settings hash ends every name
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [f"{stem}.csv", f"{stem}.json"]


def test_cli_final_blocks(tmp_path, capsys):
    import argparse

    import numpy as np
    from PIL import Image

    from sclip_lib.cli import evaluate as evaluate_cli
    from sclip_lib.cli import main

    parser = argparse.ArgumentParser(prog="sclip")
    evaluate_cli.add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["evaluate", "-b", "voc20", "--final-blocks", "3"]).final_blocks == 3
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(photo)
    args = [
        "segment",
        str(photo),
        "--classes",
        "cat; dog",
        "--model",
        "ViT-B-32",
        "--allow-untrained",
        "--templates",
        "1",
        "--short-side",
        "112",
        "--background",
        "none",
        "--final-blocks",
    ]
    assert main([*args, "13"]) == 2
    err = capsys.readouterr().err
    assert "final_blocks must be an int from 1 to 12" in err and "Traceback" not in err
    assert main([*args, "2"]) == 0

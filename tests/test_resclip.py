"""ResCLIP's RCS and SFR against a float64 reference written here from the authors' code, head by head.

The reference shares no code with sclip_lib's attention: block inputs are captured with hooks from
open_clip's own blocks; attention, the same-class affinity, the path check, the Gaussian smoothing and the blends are
written out with loops from github.com/yvhangyang/ResCLIP (clip/model.py, commit 0e085f7).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

import sclip_lib as sl
from sclip_lib.attention import get_attention, is_attention
from sclip_lib.resclip import patch_labels, same_class_affinity, sfr_affinity, straight_path_within_class
from tests.test_attention_reference import KEEP_RESIDUAL, naclip_bias, softmax_rows

BASES = ["sclip", "clearclip", "naclip"]
RCS_W, SFR_W, TEMP = (2.0, 0.3), (2.1, 0.7), 0.2


# -- the reference ------------------------------------------------------------------------------------
def heads_qkv(block, x: torch.Tensor):
    """Per-head float64 q, k, v lists of one image ``x`` (L, width) after ln_1, by hand."""
    attn = block.attn
    W, b = attn.in_proj_weight.double(), attn.in_proj_bias.double()
    width = W.shape[1]
    d = width // attn.num_heads
    ln1 = torch.nn.functional.layer_norm(
        x.double(), (width,), block.ln_1.weight.double(), block.ln_1.bias.double(), block.ln_1.eps
    )
    out = []
    for h in range(attn.num_heads):
        rows = slice(h * d, (h + 1) * d)
        out.append(
            tuple(ln1 @ W[i * width : (i + 1) * width][rows].T + b[i * width : (i + 1) * width][rows] for i in range(3))
        )
    return out, d**-0.5


def ref_path_valid(labels: list[list[int]], i: int, j: int) -> bool:
    """check_path for one pair: samples t = s / max_steps, s = 0..steps, rounded half to even (torch.round)."""
    rows, cols = len(labels), len(labels[0])
    max_steps = max(rows, cols) - 1 if rows * cols > 1 else 0
    (a, b), (c, e) = divmod(i, cols), divmod(j, cols)
    steps = max(abs(c - a), abs(e - b))
    for s in range(steps + 1):
        t = s / max_steps
        y, x = round(a * (1 - t) + c * t), round(b * (1 - t) + e * t)
        if labels[y][x] != labels[a][b]:
            return False
    return True


@functools.lru_cache
def ref_sfr(labels: tuple[tuple[int, ...], ...], sigma: float = 5.0) -> torch.Tensor:
    """generate_attention_sfr (delete_same_entity=True) with loops: (1 + N, 1 + N) float64."""
    rows, cols = len(labels), len(labels[0])
    n = rows * cols
    flat = [labels[p // cols][p % cols] for p in range(n)]
    max_steps = max(rows, cols) - 1
    S = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            same = 1.0 if (flat[i] == flat[j] or i == j) else 0.0
            if not ref_path_valid(labels, i, j):
                steps = max(abs(i // cols - j // cols), abs(i % cols - j % cols))
                same *= math.exp(-steps / max_steps)
            S[i, j] = same
    size = min(n, int(6 * sigma + 1))
    size = size if size % 2 == 1 else size + 1
    g = [math.exp(-((x - size // 2) ** 2) / (2 * sigma**2)) for x in range(size)]
    g = [v / sum(g) for v in g]
    out = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    for i in range(n):
        row = [
            sum(g[m] * (S[i, j + m - size // 2] if 0 <= j + m - size // 2 < n else 0.0) for m in range(size))
            for j in range(n)
        ]
        total = sum(max(r, 0.0) for r in row)
        for j in range(n):
            out[i + 1, j + 1] = max(row[j], 0.0) / (total + 1e-8)
    return out


def ref_last_block(block, x, base, grid, rcs_maps=None, sfr=None):
    """Last block of ``base`` (+ RCS with the mean map ``rcs_maps`` (heads, L, L)) (+ SFR prior ``sfr``)."""
    heads, s = heads_qkv(block, x)
    outputs = []
    omega = naclip_bias(*grid)
    for h, (q, k, v) in enumerate(heads):
        terms = {"sclip": [q @ q.T, k @ k.T], "clearclip": [q @ q.T], "naclip": [k @ k.T]}[base]
        A = 0
        for X in terms:
            logits = s * X
            if sfr is not None:
                tau, lam = SFR_W
                logits = tau * ((1 - lam) * logits + lam * sfr / sfr.max())
            if base == "naclip":
                logits = logits + omega  # custom_attn adds omega after the SFR blend
            A = A + softmax_rows(logits)
        if rcs_maps is not None:
            tau, lam = RCS_W
            A = tau * ((1 - lam) * A + lam * rcs_maps[h])
        outputs.append(A @ v)
    attn = block.attn
    out = torch.cat(outputs, dim=1) @ attn.out_proj.weight.double().T + attn.out_proj.bias.double()
    if not KEEP_RESIDUAL[base]:
        return out
    y = x.double() + out
    width = y.shape[-1]
    ln2 = torch.nn.functional.layer_norm(
        y, (width,), block.ln_2.weight.double(), block.ln_2.bias.double(), block.ln_2.eps
    )
    fc = ln2 @ block.mlp.c_fc.weight.double().T + block.mlp.c_fc.bias.double()
    act = (
        fc * torch.sigmoid(1.702 * fc) if type(block.mlp.gelu).__name__ == "QuickGELU" else torch.nn.functional.gelu(fc)
    )
    return y + act @ block.mlp.c_proj.weight.double().T + block.mlp.c_proj.bias.double()


def ref_rcs_maps(model, inputs: dict[int, torch.Tensor]) -> torch.Tensor:
    """Mean over blocks 5..8 of softmax(s q k^T), per head: (heads, L, L) for image 0."""
    maps = []
    for i in (5, 6, 7, 8):
        heads, s = heads_qkv(model.visual.transformer.resblocks[i], inputs[i][0])
        maps.append(torch.stack([softmax_rows(s * q @ k.T) for q, k, _ in heads]))
    return torch.stack(maps).mean(0)


def capture_block_inputs(model, images):
    """Every block's input, from open_clip's own blocks run in order (the embedding, resized for a
    non-square grid, is tested in test_encoder.py)."""
    captured, handles = {}, []
    blocks = model.visual.transformer.resblocks
    for i, block in enumerate(blocks):
        handles.append(
            block.register_forward_pre_hook(lambda mod, args, i=i: captured.setdefault(i, args[0].detach().clone()))
        )
    enc = sl.DenseEncoder(model, "vanilla")
    with torch.no_grad():
        enc.run_blocks(enc.embed(images), len(blocks))
    for h in handles:
        h.remove()
    return captured


def project(model, tokens):
    v = model.visual
    t = torch.nn.functional.layer_norm(
        tokens, (tokens.shape[-1],), v.ln_post.weight.double(), v.ln_post.bias.double(), v.ln_post.eps
    )
    return t @ v.proj.double()


# A hand-made coarse map on the 7 x 10 grid of a 112 x 160 window (ViT-B/16): three classes in blocks
# and a bar. Its largest distance, 9, is odd, so no sampled path point falls on a rounding tie.
GRID = (7, 10)
_coarse = [[0 if c < 4 else (1 if r < 3 else 2) for c in range(10)] for r in range(7)]
for _r in range(1, 6):
    _coarse[_r][1] = 3  # a thin vertical bar of class 3 inside class 0: paths across it leave the class
COARSE = tuple(tuple(row) for row in _coarse)


def coarse_prior(labels=COARSE, patch=16, confidence=0.9) -> sl.Prior:
    lab = torch.tensor(labels).repeat_interleave(patch, 0).repeat_interleave(patch, 1)[None]
    return sl.Prior(lab, torch.full(lab.shape, confidence), (patch, patch))


# -- formulas -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("mods", ["rcs", "sfr", "rcs+sfr"])
def test_resclip_last_block_matches_reference(vit_b16, base, mods):
    images = torch.randn(1, 3, 16 * GRID[0], 16 * GRID[1])
    inputs = capture_block_inputs(vit_b16, images)
    variant = sl.resclip(
        base, use_rcs="rcs" in mods, use_sfr="sfr" in mods, rcs_weights=RCS_W, sfr_weights=SFR_W, temp_thd=TEMP
    )
    enc = sl.DenseEncoder(vit_b16, variant)
    seen = []

    def feedback(features, windows):
        seen.append(features)
        return coarse_prior()

    with torch.no_grad():
        ours = enc(images, feedback=feedback)
    block = vit_b16.visual.transformer.resblocks[-1]
    maps = ref_rcs_maps(vit_b16, inputs) if "rcs" in mods else None
    ref = project(
        vit_b16, ref_last_block(block, inputs[11][0], base, GRID, maps, ref_sfr(COARSE) if "sfr" in mods else None)
    )
    torch.testing.assert_close(ours[0].double(), ref, atol=2e-5, rtol=1e-5)
    if "sfr" in mods:  # the first pass that fed the prior: the base (+ RCS) without SFR, normalised patch features
        first = project(vit_b16, ref_last_block(block, inputs[11][0], base, GRID, maps))[1:]
        first = torch.nn.functional.normalize(first, dim=-1).T.reshape(-1, *GRID)
        assert len(seen) == 1
        torch.testing.assert_close(seen[0][0].double(), first, atol=2e-5, rtol=1e-5)
    else:
        assert seen == []


def test_same_class_affinity_on_a_hand_made_map():
    labels = torch.tensor([[0, 0, 1], [2, 1, 1]])
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [0, 0, 1, 0, 1, 1],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 1, 0, 1, 1],
            [0, 0, 1, 0, 1, 1],
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(same_class_affinity(labels), expected)


def test_straight_path_on_a_hand_made_map():
    # class 1 on the right, a class-2 patch at (1, 2) between (0, 2) and (2, 2); max_steps = 3
    labels = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1], [0, 0, 1, 1]])
    valid, steps = straight_path_within_class(labels)
    at = lambda r, c: r * 4 + c  # noqa: E731
    assert valid[at(0, 3), at(2, 3)]  # down the right column: all class 1
    assert not valid[at(0, 2), at(2, 2)]  # through (1, 2), class 2
    assert not valid[at(0, 2), at(2, 3)]  # the sample at t = 1/3 rounds to (1, 2)
    assert valid[at(0, 0), at(2, 0)] and valid[at(1, 1), at(1, 1)]
    assert steps[at(0, 0), at(2, 3)] == 3 and steps[at(0, 2), at(2, 2)] == 2
    # The authors sample t = s / max_steps only up to s = steps: for a short pair only the part of the
    # segment near its start is checked. Here the class-2 patch 2 lies between 0 and 3 but is never sampled.
    row = torch.tensor([[1, 1, 2, 1, 1, 1, 1, 1]])
    valid, _ = straight_path_within_class(row)
    assert valid[0, 3] and valid[1, 2] and not valid[0, 7] and not valid[1, 4]


def test_sfr_affinity_two_patches_known_answer():
    # N = 2: kernel size min(2, 31) -> 3 (made odd), weights exp(-x^2 / 50) for x = -1, 0, 1
    out = sfr_affinity(torch.tensor([[0, 1]]), sigma=5.0)
    e = math.exp(-1 / 50)
    expected = torch.tensor([[0, 0, 0], [0, 1 / (1 + e), e / (1 + e)], [0, e / (1 + e), 1 / (1 + e)]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("same_object", [True, False])
def test_sfr_affinity_matches_loop_reference(same_object):
    out = sfr_affinity(torch.tensor(COARSE), same_object=same_object).double()
    if same_object:
        torch.testing.assert_close(out, ref_sfr(COARSE), atol=1e-6, rtol=1e-5)
    assert out[0].abs().sum() == 0 and out[:, 0].abs().sum() == 0  # CLS row and column stay 0
    torch.testing.assert_close(out[1:, 1:].sum(-1), torch.ones(70, dtype=torch.float64), atol=1e-6, rtol=0)


def test_sfr_affinity_of_a_batch_is_each_window_alone():
    coarse = torch.tensor(COARSE)
    batch = torch.stack([coarse, coarse.flip(-1), torch.zeros_like(coarse), (coarse + 1) % 3])
    together = sfr_affinity(batch)
    for window, out in zip(batch, together):
        torch.testing.assert_close(out, sfr_affinity(window), atol=0, rtol=0)
    valid, _ = straight_path_within_class(batch)
    assert torch.equal(valid[1], straight_path_within_class(batch[1])[0])


def test_patch_labels_mode_and_threshold():
    # 2 x 2 patches of 2 x 2 pixels; the top-left patch has three pixels of query 4 and one of query 1
    labels = torch.tensor([[4, 4, 2, 2], [4, 1, 2, 3], [5, 5, 6, 6], [5, 5, 6, 6]])[None]
    conf = torch.full((1, 4, 4), 0.9)
    conf[0, 2:, 2:] = 0.1  # the bottom-right patch is unsure: query 0
    got = patch_labels(sl.Prior(labels, conf, (2, 2)), (2, 2), temp_thd=0.5)
    assert got.tolist() == [[[4, 2], [5, 0]]]


# -- composition and the encoder ----------------------------------------------------------------------
@pytest.mark.parametrize("base", BASES)
def test_names_compose_with_each_base(base):
    v = get_attention(f"{base}+rcs+sfr")
    assert v.name == f"{base}+rcs+sfr" and v.layers == (5, 6, 7, 8) and v.needs_prior
    assert v.keep_residual is KEEP_RESIDUAL[base] and v.takes_bias
    assert get_attention(f"{base}+rcs").needs_prior is False and get_attention(f"{base}+sfr").layers == ()
    assert is_attention(f"{base}+rcs") and f"{base}+rcs" not in sl.ATTENTIONS


def test_modifier_order_does_not_matter(vit_b32):
    images = torch.randn(1, 3, 224, 224)
    fb = lambda f, w: coarse_prior([[0, 1, 1, 2, 2, 2, 0]] * 7, patch=32)  # noqa: E731
    with torch.no_grad():
        a = sl.DenseEncoder(vit_b32, "naclip+rcs+sfr")(images, fb)
        b = sl.DenseEncoder(vit_b32, "naclip+sfr+rcs")(images, fb)
    torch.testing.assert_close(a, b)


def test_bad_compositions_say_what_to_do():
    with pytest.raises(KeyError, match="modifiers from \\(rcs, sfr"):
        get_attention("sclip+nope")
    with pytest.raises(KeyError, match="distinct"):
        get_attention("sclip+rcs+rcs")
    with pytest.raises(ValueError, match="does not take a logit bias"):
        get_attention("maskclip+sfr")
    with pytest.raises(ValueError, match="may not contain"):
        sl.register_attention("a+b", keep_residual=False)(lambda q, k, v, ctx: v)
    assert sl.resclip("sclip", use_rcs=False, use_sfr=False) is sl.ATTENTIONS["sclip"]


def test_rcs_layers_must_precede_the_last_block(vit_b32):
    with pytest.raises(ValueError, match="below 11"):
        sl.DenseEncoder(vit_b32, sl.resclip("sclip", use_sfr=False, layers=(5, 11)))


def test_sfr_without_feedback_says_what_to_do(vit_b32):
    with pytest.raises(ValueError, match="Segmenter, or pass feedback="):
        sl.DenseEncoder(vit_b32, "sclip+sfr")(torch.randn(1, 3, 224, 224))


def test_one_pass_through_the_blocks_and_the_last_block_twice(vit_b32):
    """RCS reads blocks 5..8 in the same pass; SFR re-runs only the last block."""
    blocks = vit_b32.visual.transformer.resblocks
    calls = [0] * len(blocks)
    handles = [
        b.ln_1.register_forward_hook(lambda *a, i=i: calls.__setitem__(i, calls[i] + 1)) for i, b in enumerate(blocks)
    ]
    try:
        with torch.no_grad():
            sl.DenseEncoder(vit_b32, "sclip+rcs+sfr")(
                torch.randn(2, 3, 224, 224), lambda f, w: coarse_prior([[0] * 7] * 7, 32)
            )
    finally:
        for h in handles:
            h.remove()
    assert calls == [1] * 11 + [2]


def test_collected_blocks_equal_their_own_forward(vit_b32):
    images = torch.randn(2, 3, 224, 224)
    enc = sl.DenseEncoder(vit_b32, "sclip+rcs")
    with torch.no_grad():
        x = enc.embed(images)
        plain = enc.run_blocks(x, 11)
        collected, maps = enc.run_blocks_collecting(x, 11, (5, 6, 7, 8))
    torch.testing.assert_close(collected, plain, atol=1e-5, rtol=1e-5)
    assert sorted(maps) == [5, 6, 7, 8] and maps[5].shape == (2, 12, 50, 50)
    torch.testing.assert_close(maps[7].sum(-1), torch.ones(2, 12, 50), atol=1e-5, rtol=0)


def test_attention_maps_of_resclip_rows(vit_b32):
    """Plots: SCLIP rows sum to 2, + RCS to tau((1 - lam) 2 + lam), + SFR does not change the sums."""
    images = torch.randn(1, 3, 224, 224)
    enc = sl.DenseEncoder(vit_b32, "sclip")
    tau, lam = get_attention("sclip+rcs").params["rcs_weights"]
    fb = lambda f, w: coarse_prior([[0, 0, 1, 1, 1, 2, 2]] * 7, 32)  # noqa: E731
    for name, total in [
        ("sclip+rcs", tau * ((1 - lam) * 2 + lam)),
        ("sclip+rcs+sfr", tau * ((1 - lam) * 2 + lam)),
        ("sclip+sfr", 2.0),
    ]:
        A = enc.attention_maps(images, attention=name, feedback=fb)
        torch.testing.assert_close(A.sum(-1), torch.full(A.shape[:-1], total), atol=1e-4, rtol=0)
    assert not torch.allclose(
        enc.attention_maps(images, attention="sclip+sfr", feedback=fb), enc.attention_maps(images)
    )


# -- the segmenter and the protocol -------------------------------------------------------------------
def test_segmenter_runs_resclip_and_records_its_settings(vit_b32):
    from tests.conftest import ONE_TEMPLATE

    image = torch.rand(3, 240, 300)
    variant = sl.PROTOCOLS["resclip"].attention_for(sl.BENCHMARKS["voc21"], "naclip+rcs+sfr")
    seg = sl.Segmenter(vit_b32, ["cat", "dog"], attention=variant, templates=ONE_TEMPLATE, short_side=224)
    mask = seg.predict(image)
    assert mask.shape == (240, 300)
    d = seg.describe()
    assert d["attention"] == "naclip+rcs+sfr" and d["attention_params"]["temp_thd"] == 0.5
    assert "attention_params" not in sl.Segmenter(vit_b32, ["cat"], templates=ONE_TEMPLATE).describe()
    # the prior handed to SFR is the window's own first-pass prediction: one label and probability per pixel
    _, x = seg.stages.preprocess(image)
    crop = x[..., :224, :224]
    with torch.no_grad():
        feats = sl.DenseEncoder(vit_b32, "naclip+rcs")(crop)
        prior = seg.stages.coarse_segmentation(sl.DenseEncoder._dense(feats, (7, 7)), crop)
    assert prior.top_query.shape == prior.confidence.shape == (1, 224, 224) and prior.patch_size == (32, 32)
    assert int(prior.top_query.max()) < 2 and bool(((prior.confidence >= 0.5) & (prior.confidence <= 1)).all())


# ResCLIP README tables (figs/main_results_w.png, figs/main_results_wo.png), ViT-B/16: each method's
# "Avg." column (with background, without), base row and "+ResCLIP" row.
PUBLISHED_AVERAGES = {
    "sclip": ((40.0, 42.7), (37.1, 39.3)),
    "clearclip": ((39.1, 42.0), (37.5, 40.0)),
    "naclip": ((41.4, 43.2), (38.2, 40.3)),
}


def test_first_pass_gives_each_window_the_same_prior_one_by_one_or_in_chunks(vit_b32, monkeypatch):
    import sclip_lib.stages as stages_module
    from tests.conftest import ONE_TEMPLATE

    seg = sl.Segmenter(vit_b32, ["cat", "dog", "grass"], attention="sclip+sfr", templates=ONE_TEMPLATE)
    torch.manual_seed(0)
    windows = torch.randn(5, 3, 224, 224)
    features = F.normalize(torch.randn(5, vit_b32.visual.output_dim, 7, 7), dim=1)
    one = seg.stages.coarse_segmentation(features, windows)  # a CPU: one window at a time
    monkeypatch.setattr(stages_module, "_prior_chunk", lambda windows, queries: 3)  # as on a GPU: 3 + 2
    chunked = seg.stages.coarse_segmentation(features, windows)
    assert torch.equal(one.top_query, chunked.top_query) and one.top_query.shape == (5, 224, 224)
    torch.testing.assert_close(one.confidence, chunked.confidence, rtol=1e-5, atol=1e-6)
    # each window's prior is its own: the first window alone gives the same
    alone = seg.stages.coarse_segmentation(features[:1], windows[:1])
    assert torch.equal(alone.top_query[0], one.top_query[0])


def test_protocol_numbers_match_the_published_averages_and_the_bases_own_papers():
    resclip = sl.PROTOCOLS["resclip"]
    groups = [["voc21", "context60", "coco_object"], ["voc20", "context59", "coco_stuff", "cityscapes", "ade20k"]]
    assert set(resclip.benchmarks) == set(sl.BENCHMARKS)
    for base, averages in PUBLISHED_AVERAGES.items():
        for names, (base_avg, plus_avg) in zip(groups, averages):
            benches = [sl.BENCHMARKS[n] for n in names]
            plus = [resclip.numbers(b, f"{base}+rcs+sfr")[0].miou for b in benches]
            # the table's base rows are each base's own paper number, under the base's own protocol
            own = [sl.PROTOCOLS[base].numbers(b)[0].miou for b in benches]
            # the table averages unrounded numbers: its average and that of its rounded cells differ by < 0.1
            assert abs(sum(plus) / len(plus) - plus_avg) <= 0.1
            assert abs(sum(own) / len(own) - base_avg) <= 0.1
    # ResCLIP's protocol publishes no number for a base alone or one module alone
    assert resclip.numbers(sl.BENCHMARKS["voc21"], "naclip") == (None, None)
    assert resclip.numbers(sl.BENCHMARKS["voc21"], "naclip+rcs") == (None, None)


def test_protocol_settings_and_weights_per_benchmark(vit_b32):
    resclip = sl.PROTOCOLS["resclip"]
    voc21, city = (resclip.settings_for(sl.BENCHMARKS[n]) for n in ("voc21", "cityscapes"))
    assert (voc21.short_side, voc21.logit_scale, voc21.prob_thd, voc21.area_thd, voc21.pamr) == (
        336,
        40.0,
        0.1,
        None,
        False,
    )
    assert (
        voc21.inference == "whole" and resclip.settings_for(sl.BENCHMARKS["voc20"]).inference == "whole"
    )  # slide_crop=0
    assert (city.short_side, city.crop, city.stride, city.inference) == (560, 224, 112, "slide")
    # names get the benchmark's weights (cfg_context60.py: attn_rcs_weights=[2.0, 0.3], temp_thd=0.30)
    bench = sl.BENCHMARKS["context60"]
    seg = bench.segmenter(vit_b32, "clearclip+rcs+sfr", protocol="resclip", batch_size=2)
    params = seg.encoder.variant.params
    assert seg.attention == "clearclip+rcs+sfr" and seg.has_background and seg.num_classes == 60
    assert params["rcs_weights"] == (2.0, 0.3) and params["sfr_weights"] == (1.8, 0.7) and params["temp_thd"] == 0.3
    assert seg.protocol == "resclip" and seg.settings.batch_size == 2
    # the same names under SCLIP's protocol keep the modules' defaults, and other weights leave the protocol
    assert bench.segmenter(vit_b32, "clearclip+rcs").encoder.variant.params["rcs_weights"] == (2.0, 0.4)
    other = sl.resclip("clearclip", rcs_weights=(2.0, 0.5), sfr_weights=(1.8, 0.7), temp_thd=0.3)
    assert bench.segmenter(vit_b32, other, protocol="resclip").protocol is None


def test_results_show_resclip_numbers_only_for_a_published_method_under_its_protocol(vit_b32):
    from sclip_lib.evaluation.loop import _published

    bench = sl.BENCHMARKS["voc21"]
    runs = [
        ("naclip+rcs+sfr", "resclip"),
        ("sclip+rcs+sfr", "resclip"),
        ("sclip+rcs", "resclip"),
        ("naclip", "resclip"),
        ("naclip+rcs+sfr", "naclip"),
    ]
    shown = [_published(bench.segmenter(vit_b32, a, protocol=p), bench)["paper_miou"] for a, p in runs]
    assert shown == [61.1, 60.7, None, None, None]

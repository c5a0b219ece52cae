"""The explorers' data export (sclip_lib/book/explorers.py): arrays against the encoder, float16 round trip, budget.

The browser side is checked against the same numbers in tests/test_book_site.py (after `make book`).
"""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sclip_lib as sl
from sclip_lib import book
from sclip_lib.book import explorers as explorer
from sclip_lib.evaluation.registry import read_classes

SMALL = 112  # a 7 x 7 patch grid for ViT-B/16: quick, and not the model's native 14 x 14
WORDS = ["cat", "wall", "traffic light"]


@pytest.fixture(scope="module")
def chelsea():
    return book.sample_images(["chelsea"])["chelsea"]


@pytest.fixture(scope="module")
def small_data(vit_b16, chelsea):
    words_emb = torch.nn.functional.normalize(
        torch.randn(len(WORDS), 512, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    return explorer.compute(vit_b16, {"chelsea": chelsea}, words=WORDS, text_features=words_emb, size=SMALL)


def test_crop_is_the_centre_square_of_the_resized_image(chelsea):
    square = explorer.crop_image(chelsea, 224)
    assert square.shape == (224, 224, 3) and square.dtype == np.uint8
    # chelsea is 300 x 451: short side -> 224, long side -> 337; the crop drops 56 columns on the left
    resized = sl.images.resize_to_fit(sl.images.as_image_tensor(chelsea), 224, 10**6)
    assert tuple(resized.shape[-2:]) == (224, 337)
    expected = (resized[:, :, 56:280].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(square, expected)


def test_one_pass_matches_the_encoder_block_by_block(vit_b16, chelsea):
    """Rows and features from the one pass equal DenseEncoder.attention_maps / dense_features, block by block."""
    x = explorer._model_input(vit_b16, explorer.crop_image(chelsea, SMALL))
    rows, feats = explorer.image_arrays(vit_b16, x)
    layers = len(vit_b16.visual.transformer.resblocks)
    assert rows.shape == (layers, 2, 49, 50) and feats.shape == (2, 512, 49)
    enc = sl.DenseEncoder(vit_b16, "vanilla")
    for layer in (0, 5, layers - 1):
        for v, variant in enumerate(explorer.VARIANTS):
            ref = enc.attention_maps(x, layer=layer, attention=variant)[0].mean(0)[1:]
            torch.testing.assert_close(rows[layer, v], ref, atol=1e-6, rtol=1e-5)
    for v, variant in enumerate(explorer.VARIANTS):
        ref = sl.DenseEncoder(vit_b16, variant).dense_features(x)[0].flatten(1)
        torch.testing.assert_close(feats[v], ref, atol=1e-5, rtol=1e-4)
    # the rows are attention: vanilla rows sum to 1, CSA rows (two softmaxes, not renormalised) to 2
    torch.testing.assert_close(rows[:, 0].sum(-1), torch.ones(layers, 49))
    torch.testing.assert_close(rows[:, 1].sum(-1), torch.full((layers, 49), 2.0))


def test_float16_files_round_trip(vit_b16, chelsea, small_data, tmp_path):
    m = small_data.manifest
    assert m["format"] == explorer.FORMAT and m["grid"] == [7, 7] and m["size"] == [SMALL, SMALL]
    assert m["smoke"] is True and "untrained" in m["weights"]  # untrained weights say so
    img = m["images"][0]
    att, feats = small_data.array(img["attention"]), small_data.array(img["features"])
    assert att.dtype == np.float16 and att.shape == (m["layers"], 2, 49, 50)
    assert feats.shape == (2, 512, 49)
    for ref in (img["attention"], img["features"], m["vocabulary"]):
        assert len(small_data.blobs[ref["blob"]]) == 2 * int(np.prod(ref["shape"]))
    x = explorer._model_input(vit_b16, explorer.crop_image(chelsea, SMALL))
    rows, dense = explorer.image_arrays(vit_b16, x)
    # float16 keeps ~3 significant digits: absolute error below 1e-3 on every value the explorer shows
    np.testing.assert_allclose(att.astype(np.float32), rows.numpy(), atol=5e-4, rtol=1e-3)
    np.testing.assert_allclose(feats.astype(np.float32), dense.numpy(), atol=1e-4, rtol=1e-3)
    # written as files: the same bytes, readable by a web server, named by content, a manifest naming them
    manifest_path = small_data.save(tmp_path)
    saved = json.loads(manifest_path.read_text())
    assert saved == json.loads(json.dumps(m))
    for name, data in small_data.blobs.items():
        assert (tmp_path / name).read_bytes() == data
        assert (tmp_path / name).stat().st_mode & stat.S_IROTH
    reread = np.frombuffer((tmp_path / img["attention"]["blob"]).read_bytes(), dtype="<f2").reshape(att.shape)
    np.testing.assert_array_equal(reread, att)
    with Image.open(tmp_path / img["image"]) as im:
        assert im.size == (SMALL, SMALL) and im.format == "JPEG"
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"


def test_vocabulary_holds_every_benchmark_name_once():
    words = explorer.vocabulary()
    lower = [w.lower() for w in words]
    assert len(lower) == len(set(lower)), "a word is listed twice"
    assert 1000 <= len(words) <= 5000
    for classes in sorted(p.name for p in (Path(sl.__file__).parent / "benchmarks" / "classes").glob("*.txt")):
        for line in read_classes(classes):
            for name in line.split(","):
                assert " ".join(name.split()).lower() in set(lower), f"{classes}: {name.strip()!r} missing"


def test_explorer_html_inline_and_by_url(small_data):
    inline = explorer.Explorer(small_data, "similarity", words="cat; wall")._repr_html_()
    assert "SclipExplorer.mount(" in inline and "http" not in re.sub(r"https?://[^\s\"']*w3\.org[^\s\"']*", "", inline)
    config = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', inline, re.S).group(1))
    vocab = small_data.manifest["vocabulary"]["blob"]
    assert set(config["sources"]) == set(small_data.needed("similarity")) and vocab in config["sources"]
    assert np.array_equal(
        np.frombuffer(base64.b64decode(config["sources"][vocab]["b64"]), dtype="<f2"),
        np.frombuffer(small_data.blobs[vocab], dtype="<f2"),
    )
    by_url = explorer.Explorer(small_data, "attention", base_url="explorer-data").config()
    assert all(s["url"].startswith("explorer-data/") for s in by_url["sources"].values())
    assert by_url["manifest"]["vocabulary"] is None  # the attention explorer does not carry the word list
    with pytest.raises(ValueError, match="kind"):
        explorer.Explorer(small_data, "heatmap")
    with pytest.raises(TypeError, match="unknown options"):
        explorer.Explorer(small_data, "attention", patchh=(1, 2))


def test_compute_rejects_empty_requests(vit_b16):
    with pytest.raises(ValueError, match="no images"):
        explorer.compute(vit_b16, {})
    with pytest.raises(ValueError, match="nothing to compute"):
        explorer.compute(vit_b16, {"x": np.zeros((32, 32, 3), np.uint8)}, attention=False, similarity=False)


def test_every_chapter_stays_within_the_budget(vit_b16, chelsea):
    """Each chapter's explorer files, at the book's real sizes (224 crops, ViT-B/16, the whole vocabulary).

    Every image's arrays have the same shape (the crop is fixed), so one image's arrays are computed;
    each image's JPEG is made and measured on its own.
    """
    words = explorer.vocabulary()
    fake_text = torch.nn.functional.normalize(torch.randn(len(words), 512), dim=-1)  # the size, not the values
    data = explorer.compute(vit_b16, {"chelsea": chelsea}, words=words, text_features=fake_text)
    entry = data.manifest["images"][0]
    arrays = {
        "attention": len(data.blobs[entry["attention"]["blob"]]),
        "similarity": len(data.blobs[entry["features"]["blob"]]),
    }
    assert arrays["attention"] == 12 * 2 * 196 * 197 * 2 and arrays["similarity"] == 2 * 512 * 196 * 2
    vocab = len(data.blobs[data.manifest["vocabulary"]["blob"]])
    assert vocab == len(words) * 512 * 2
    for chapter, spec in book.EXPLORERS.items():
        images = book.sample_images(spec["images"])
        jpegs = sum(len(data.blobs[explorer._jpeg(explorer.crop_image(img), data.blobs)]) for img in images.values())
        total = (
            jpegs
            + len(images) * sum(arrays[k] for k in spec["kinds"])
            + (vocab if "similarity" in spec["kinds"] else 0)
        )
        assert total < explorer.BUDGET_BYTES, f"{chapter}: {total / 1e6:.2f} MB of explorer data"


def test_inline_explorers_in_chromium(small_data, tmp_path):
    """The notebook form (data inlined, opened from a file, no server): the script's numbers equal numpy's."""
    from sclip_lib.testing.browser import find_chromium, missing_message

    chromium = find_chromium()
    if chromium is None:
        pytest.skip(missing_message())
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    m = small_data.manifest
    grid = m["grid"]
    att = small_data.array(m["images"][0]["attention"]).astype(np.float64)
    feats = small_data.array(m["images"][0]["features"]).astype(np.float64)
    text = small_data.array(m["vocabulary"]).astype(np.float64)
    pages = {
        kind: explorer.Explorer(small_data, kind, layer=2, words="cat; wall; traffic light").save_html(
            tmp_path / f"{kind}.html"
        )
        for kind in explorer.KINDS
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(pages["attention"].as_uri())
            page.wait_for_function(
                "() => { const e = document.querySelector('.sclip-explorer'); return e.__sclip && e.__sclip.ready; }"
            )
            box = page.locator("canvas").first.bounding_box()
            page.mouse.move(box["x"] + 4.5 * box["width"] / grid[1], box["y"] + 1.5 * box["height"] / grid[0])
            page.wait_for_function("() => document.querySelector('.sclip-explorer').__sclip.ready")
            state = page.evaluate("() => document.querySelector('.sclip-explorer').__sclip")
            assert state["patch"] == [1, 4] and state["layer"] == 1
            q = 1 * grid[1] + 4
            for v, variant in enumerate(m["variants"]):
                rows = att[1, v]
                np.testing.assert_allclose(state["rows"][variant], rows[q], atol=1e-7)
                unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
                sim = unit @ unit.T
                n = len(rows)
                assert state["stats"][variant]["invariance"] == pytest.approx((sim.sum() - n) / (n * (n - 1)), abs=1e-6)
                assert state["stats"][variant]["argmax"] == list(divmod(int(rows[q, 1:].argmax()), grid[1]))
            page.goto(pages["similarity"].as_uri())
            page.wait_for_function(
                "() => { const e = document.querySelector('.sclip-explorer'); return e.__sclip && e.__sclip.ready; }"
            )
            state = page.evaluate("() => document.querySelector('.sclip-explorer').__sclip")
            assert state["known"] == ["cat", "wall", "traffic light"] and state["word"] == "cat"
            for v, variant in enumerate(m["variants"]):
                cos = text[0] @ feats[v]
                np.testing.assert_allclose(state["values"][variant]["map"], cos, atol=1e-6)
                maps = torch.from_numpy(text @ feats[v]).reshape(3, *grid)
                labels = torch.nn.functional.interpolate(
                    maps[None], size=m["size"], mode="bilinear", align_corners=False
                )[0].argmax(0)
                shares = torch.bincount(labels.flatten(), minlength=3).double() / labels.numel()
                np.testing.assert_allclose(state["shares"][variant], shares.numpy(), atol=1e-9)
            assert not errors, errors
        finally:
            browser.close()

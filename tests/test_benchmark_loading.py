"""``load_benchmark`` on local copies built here: each hub repo's parquet layout (written by ``datasets``
as the hub's converter does, from generated images and the real samples) and each original layout."""

from __future__ import annotations

import io

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import sclip_lib as sl
from sclip_lib.evaluation import BENCHMARKS, BenchmarkSourceError, LabelError
from tests.conftest import shared_data


def rng_image(rng, h, w) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def hub_copy(folder, name, images, masks, *, mask_mode=None):
    """Write ``images``/``masks`` (PIL) as the benchmark's hub repo stores them: its parquet file path,
    its column names, Image features ({bytes, path} structs with the HF schema metadata)."""
    hub = BENCHMARKS[name].hub
    path = folder / hub.data_files.replace("*", "00000-of-00001" if "-*" in hub.data_files else "0000")
    path.parent.mkdir(parents=True, exist_ok=True)
    if mask_mode:
        masks = [m.convert(mask_mode) for m in masks]
    features = datasets.Features({hub.image_column: datasets.Image(), hub.mask_column: datasets.Image()})
    datasets.Dataset.from_dict({hub.image_column: images, hub.mask_column: masks}, features=features).to_parquet(path)
    return folder


def generated_voc(rng, n=5, size=(40, 48)):
    """``n`` random images and VOC masks (P mode, values 0..20 and a 255 border), and the raw masks."""
    images, masks, raws = [], [], []
    for i in range(n):
        raw = rng.integers(0, 21, size, dtype=np.uint8)
        raw[0, :] = 255
        raw[1, :] = i  # tells the rows apart
        m = Image.fromarray(raw, mode="P")
        m.putpalette([(37 * i) % 256 for i in range(768)])  # colours differ from indices: indices must be read
        images.append(rng_image(rng, *size))
        masks.append(m)
        raws.append(raw)
    return images, masks, raws


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- hub layout ------------------------------------------------------------------------------
def test_hub_layout_voc21_and_voc20_views(tmp_path, rng):
    images, masks, raws = generated_voc(rng)
    hub_copy(tmp_path, "voc21", images, masks)
    assert (tmp_path / "data" / "val-00000-of-00001.parquet").is_file()
    data = sl.load_benchmark("voc21", source=tmp_path)
    assert len(data) == 5 and data.source["kind"].startswith("local copy")
    got = list(data)
    assert [s.mask[1, 0] for s in got] == [0, 1, 2, 3, 4]  # stored order
    for s, image, raw in zip(got, images, raws):
        assert np.array_equal(s.image, np.asarray(image)) and s.mask.dtype == np.uint8
        assert np.array_equal(s.mask, raw)  # VOC21: identity
    v20 = list(sl.load_benchmark("voc20", source=tmp_path, workers=0))
    for s, raw in zip(v20, raws):
        expected = np.where((raw == 0) | (raw == 255), 255, raw.astype(int) - 1)
        assert np.array_equal(s.mask, expected)


def test_subset_is_the_first_rows_every_time(tmp_path, rng):
    images, masks, _ = generated_voc(rng, n=6)
    hub_copy(tmp_path, "voc21", images, masks)
    first = [s.mask[1, 0] for s in sl.load_benchmark("voc21", limit=3, source=tmp_path)]
    again = [s.mask[1, 0] for s in sl.load_benchmark("voc21", limit=3, source=tmp_path, workers=1)]
    assert first == again == [0, 1, 2]
    data = sl.load_benchmark("voc21", limit=3, source=tmp_path)
    assert len(data) == 3 and data.describe()["limit"] == 3
    assert len(sl.load_benchmark("voc21", limit=50, source=tmp_path)) == 6


def test_hub_layout_from_real_voc_samples(tmp_path):
    root = shared_data("voc2012")
    ids = ["294", "582", "8"]
    images = [Image.open(root / f"{i}_image.png") for i in ids]
    masks = [Image.open(root / f"{i}_label.png") for i in ids]
    hub_copy(tmp_path, "voc21", images, masks)
    v21 = list(sl.load_benchmark("voc21", source=tmp_path))
    v20 = list(sl.load_benchmark("voc20", source=tmp_path))
    for i, a, b in zip(ids, v21, v20):
        raw = np.asarray(Image.open(root / f"{i}_label.png"))
        assert np.array_equal(a.mask, raw)
        assert set(np.unique(b.mask).tolist()) == {v - 1 for v in np.unique(raw).tolist() if v not in (0, 255)} | {255}
    assert set(np.unique(v21[0].mask).tolist()) == {0, 7, 15, 255}  # car and person


def test_hub_layout_from_real_ade20k_samples(tmp_path):
    root = shared_data("ade20k")
    names = ["ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003"]
    hub_copy(
        tmp_path,
        "ade20k",
        [Image.open(root / "images" / f"{n}.jpg") for n in names],
        [Image.open(root / "annotations" / f"{n}.png") for n in names],
    )
    assert (tmp_path / "scene_parsing" / "validation" / "0000.parquet").is_file()
    samples = list(sl.load_benchmark("ade20k", source=tmp_path))
    assert len(samples) == 3
    for n, s in zip(names, samples):
        raw = np.asarray(Image.open(root / "annotations" / f"{n}.png"))
        assert s.image.shape[:2] == raw.shape
        assert ((raw == 0) == (s.mask == 255)).all() and (s.mask[raw > 0] == raw[raw > 0] - 1).all()


def test_hub_layout_coco_stuff_and_object_from_real_sample(tmp_path):
    from tests.test_benchmark_labels import coco_stuffthing_map

    root = shared_data("coco")
    stuffthing = Image.fromarray(coco_stuffthing_map(root), mode="L")
    hub_copy(tmp_path, "coco_stuff", [Image.open(root / "000000039769.png")], [stuffthing])
    (stuff,) = sl.load_benchmark("coco_stuff", source=tmp_path)
    (obj,) = sl.load_benchmark("coco_object", source=tmp_path)
    assert np.array_equal(
        stuff.mask, np.asarray(Image.open(root / "000000039769_cocostuff171_APPROX_from_panoptic.png"))
    )
    assert np.array_equal(obj.mask, np.asarray(Image.open(root / "000000039769_cocoobject81_APPROX_from_panoptic.png")))


def test_plain_parquet_struct_columns_load_too(tmp_path, rng):
    """Parquet without the HF feature metadata: {bytes, path} structs, as other tools write them."""

    def png(img):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}

    raw = rng.integers(0, 34, (16, 20), dtype=np.uint8)
    table = pa.table({"image": [png(rng_image(rng, 16, 20))], "semantic_segmentation": [png(Image.fromarray(raw))]})
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "validation-00000-of-00001.parquet")
    (s,) = sl.load_benchmark("cityscapes", source=tmp_path)
    assert s.mask[raw == 7].tolist() == [0] * int((raw == 7).sum())  # road
    assert (s.mask[raw < 7] == 255).all()


def test_grey_mask_stored_as_rgb_is_accepted_colour_is_not(tmp_path, rng):
    images, masks, raws = generated_voc(rng, n=2)
    hub_copy(tmp_path / "grey", "voc21", images, [Image.fromarray(r).convert("RGB") for r in raws])
    assert np.array_equal(next(iter(sl.load_benchmark("voc21", source=tmp_path / "grey"))).mask, raws[0])
    colour = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in raws]
    hub_copy(tmp_path / "colour", "voc21", images, colour)
    with pytest.raises(ValueError, match="colour image; expected class indices"):
        sl.load_benchmark("voc21", source=tmp_path / "colour")


# -- original layouts -----------------------------------------------------------------------
def save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def test_voc_original_layout_follows_the_split_file(tmp_path, rng):
    ids = ["2007_000033", "2007_000042", "2007_000061"]
    for i, n in enumerate(ids):
        save(tmp_path / "JPEGImages" / f"{n}.jpg", rng_image(rng, 30, 40))
        mask = Image.fromarray(np.full((30, 40), i + 1, np.uint8), mode="P")
        mask.putpalette([(37 * i) % 256 for i in range(768)])  # a P PNG needs its palette (VOC's has one)
        save(tmp_path / "SegmentationClass" / f"{n}.png", mask)
    split = tmp_path / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("2007_000061\n2007_000033\n")  # not sorted: the file's order is kept
    data = sl.load_benchmark("voc21", source=tmp_path)
    assert [(s.name, int(s.mask[0, 0])) for s in data] == [("2007_000061", 3), ("2007_000033", 1)]
    assert data.source["kind"] == "local folder (voc layout)"


def test_context_original_layout(tmp_path, rng):
    raw = rng.integers(0, 60, (24, 32), dtype=np.uint8)
    save(tmp_path / "JPEGImages" / "2008_000002.jpg", rng_image(rng, 24, 32))
    save(tmp_path / "SegmentationClassContext" / "2008_000002.png", Image.fromarray(raw))
    (tmp_path / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (tmp_path / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000002\n")
    (c60,) = sl.load_benchmark("context60", source=tmp_path)
    (c59,) = sl.load_benchmark("context59", source=tmp_path)
    assert np.array_equal(c60.mask, raw)
    assert np.array_equal(c59.mask, np.where(raw == 0, 255, raw.astype(int) - 1))


def test_ade20k_cityscapes_coco_original_layouts(tmp_path, rng):
    ade = tmp_path / "ade"
    for n in ("ADE_val_00000002", "ADE_val_00000001"):
        save(ade / "images" / "validation" / f"{n}.jpg", rng_image(rng, 20, 30))
        save(ade / "annotations" / "validation" / f"{n}.png", Image.fromarray(np.full((20, 30), 150, np.uint8)))
    samples = list(sl.load_benchmark("ade20k", source=ade))
    assert [s.name for s in samples] == ["ADE_val_00000001", "ADE_val_00000002"]
    assert (samples[0].mask == 149).all()

    city = tmp_path / "city"
    stem = "frankfurt_000000_000294"
    save(city / "leftImg8bit" / "val" / "frankfurt" / f"{stem}_leftImg8bit.png", rng_image(rng, 16, 32))
    ids = np.tile(np.arange(32, dtype=np.uint8), (16, 1))
    save(city / "gtFine" / "val" / "frankfurt" / f"{stem}_gtFine_labelIds.png", Image.fromarray(ids))
    (s,) = sl.load_benchmark("cityscapes", source=city)
    assert s.mask[0, 7] == 0 and s.mask[0, 26] == 13 and s.mask[0, 0] == 255

    coco = tmp_path / "coco"
    save(coco / "images" / "val2017" / "000000000139.jpg", rng_image(rng, 12, 12))
    save(coco / "annotations" / "val2017" / "000000000139.png", Image.fromarray(np.full((12, 12), 16, np.uint8)))
    (s,) = sl.load_benchmark("coco_object", source=coco)
    assert (s.mask == 16).all()  # cat (category 17, stored 16) is COCO-Object class 16


# -- bad input --------------------------------------------------------------------------------
def test_unknown_benchmark_error_lists_names():
    with pytest.raises(KeyError, match="voc21, context60, coco_object"):
        sl.load_benchmark("pascal_voc")


def test_hub_unreachable_names_the_dataset_and_the_fix(offline):
    with pytest.raises(BenchmarkSourceError) as err:
        sl.load_benchmark("ade20k", limit=2)
    msg = str(err.value)
    assert "zhoubolei/scene_parse_150" in msg and "load_benchmark('ade20k', source=" in msg


def test_context_has_no_hub_copy():
    with pytest.raises(BenchmarkSourceError, match="SegmentationClassContext"):
        sl.load_benchmark("context59")


def test_mask_values_outside_the_benchmarks_range(tmp_path, rng):
    masks = [Image.fromarray(np.full((20, 20), v, np.uint8)) for v in (3, 151)]
    hub_copy(tmp_path, "ade20k", [rng_image(rng, 20, 20)] * 2, masks)
    with pytest.raises(LabelError, match=r"values \[151\]"):
        sl.load_benchmark("ade20k", source=tmp_path)


def test_bad_row_after_the_checked_ones_fails_while_iterating(tmp_path, rng):
    masks = [Image.fromarray(np.full((20, 20), v, np.uint8)) for v in (1, 2, 3, 200)]
    hub_copy(tmp_path, "voc21", [rng_image(rng, 20, 20)] * 4, masks)
    data = sl.load_benchmark("voc21", source=tmp_path)  # the first rows are fine
    with pytest.raises(LabelError, match="200"):
        list(data)


def test_image_and_mask_of_different_sizes(tmp_path, rng):
    hub_copy(tmp_path, "voc21", [rng_image(rng, 20, 30)], [Image.fromarray(np.zeros((20, 20), np.uint8))])
    with pytest.raises(ValueError, match="30x20 and mask 20x20"):
        sl.load_benchmark("voc21", source=tmp_path)


def test_empty_subsets_and_sources(tmp_path):
    for limit in (0, -1, 2.5):
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            sl.load_benchmark("voc21", limit=limit, source=tmp_path)
    with pytest.raises(BenchmarkSourceError, match="JPEGImages"):
        sl.load_benchmark("voc21", source=tmp_path)  # an empty folder
    split = tmp_path / "ImageSets" / "Segmentation" / "val.txt"
    split.parent.mkdir(parents=True)
    split.write_text("\n")
    with pytest.raises(BenchmarkSourceError, match="no images"):
        sl.load_benchmark("voc21", source=tmp_path)
    with pytest.raises(BenchmarkSourceError, match="not a folder"):
        sl.load_benchmark("voc21", source=tmp_path / "missing")


def test_missing_mask_and_wrong_parquet_layout(tmp_path, rng):
    save(tmp_path / "a" / "images" / "validation" / "x.jpg", rng_image(rng, 8, 8))
    with pytest.raises(BenchmarkSourceError, match="missing .*x.png"):
        sl.load_benchmark("ade20k", source=tmp_path / "a")
    hub_copy(tmp_path / "b", "voc21", [rng_image(rng, 8, 8)], [Image.fromarray(np.zeros((8, 8), np.uint8))])
    with pytest.raises(BenchmarkSourceError, match="scene_parsing/validation"):
        sl.load_benchmark("ade20k", source=tmp_path / "b")  # parquet files, but the VOC repo's layout


def test_wrong_columns_are_named(tmp_path, rng):
    hub_copy(tmp_path, "voc21", [rng_image(rng, 8, 8)], [Image.fromarray(np.zeros((8, 8), np.uint8))])
    # same file name as the cityscapes repo, but VOC's columns
    (tmp_path / "data" / "val-00000-of-00001.parquet").rename(tmp_path / "data" / "validation-00000-of-00001.parquet")
    with pytest.raises(BenchmarkSourceError, match="semantic_segmentation"):
        sl.load_benchmark("cityscapes", source=tmp_path)

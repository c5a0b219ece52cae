"""Label conversions: complete tables written here from the benchmarks' own definitions, and
known answers on the real ADE20K, VOC and COCO masks in ../shared/data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sclip_lib.evaluation import BENCHMARKS, LabelError
from sclip_lib.evaluation import labels as L
from tests.conftest import shared_data


def squash(name: str) -> str:
    """Compare names the way the authors' files write them ("traffic light" -> "trafficlight")."""
    return name.replace(" ", "").lower()


def first_names(bench: str) -> list[str]:
    return [squash(n) for n in BENCHMARKS[bench].class_names]


# -- Cityscapes: cityscapesScripts/helpers/labels.py, (name, id, trainId); 255 = not evaluated --------
CITYSCAPES_LABELS = [
    ("unlabeled", 0, 255),
    ("ego vehicle", 1, 255),
    ("rectification border", 2, 255),
    ("out of roi", 3, 255),
    ("static", 4, 255),
    ("dynamic", 5, 255),
    ("ground", 6, 255),
    ("road", 7, 0),
    ("sidewalk", 8, 1),
    ("parking", 9, 255),
    ("rail track", 10, 255),
    ("building", 11, 2),
    ("wall", 12, 3),
    ("fence", 13, 4),
    ("guard rail", 14, 255),
    ("bridge", 15, 255),
    ("tunnel", 16, 255),
    ("pole", 17, 5),
    ("polegroup", 18, 255),
    ("traffic light", 19, 6),
    ("traffic sign", 20, 7),
    ("vegetation", 21, 8),
    ("terrain", 22, 9),
    ("sky", 23, 10),
    ("person", 24, 11),
    ("rider", 25, 12),
    ("car", 26, 13),
    ("truck", 27, 14),
    ("bus", 28, 15),
    ("caravan", 29, 255),
    ("trailer", 30, 255),
    ("train", 31, 16),
    ("motorcycle", 32, 17),
    ("bicycle", 33, 18),
]


def test_cityscapes_table_complete():
    conv = L.cityscapes_to_train_ids()
    ids = np.array([[lid for _, lid, _ in CITYSCAPES_LABELS] + [255]], dtype=np.uint8)
    expected = [train for _, _, train in CITYSCAPES_LABELS] + [255]
    assert conv(ids)[0].tolist() == expected
    for bad in (34, 100, 254):  # not a Cityscapes label id
        with pytest.raises(LabelError, match=str(bad)):
            conv(np.array([[7, bad]], dtype=np.uint8))
    # the class file lists the 19 evaluated classes in train-id order
    by_train = sorted((t, n) for n, _, t in CITYSCAPES_LABELS if t != 255)
    assert [t for t, _ in by_train] == list(range(19))
    assert first_names("cityscapes") == [squash(n) for _, n in by_train]


# -- COCO: category id -> name (COCO-Stuff labels.txt); None marks ids the annotations never use -----
COCO_THINGS = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    None,
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    None,
    "backpack",
    "umbrella",
    None,
    None,
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    None,
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    None,
    "dining table",
    None,
    None,
    "toilet",
    None,
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    None,
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
    None,
]  # ids 1..91
COCO_STUFF = [
    "banner",
    "blanket",
    "branch",
    "bridge",
    "building-other",
    "bush",
    "cabinet",
    "cage",
    "cardboard",
    "carpet",
    "ceiling-other",
    "ceiling-tile",
    "cloth",
    "clothes",
    "clouds",
    "counter",
    "cupboard",
    "curtain",
    "desk-stuff",
    "dirt",
    "door-stuff",
    "fence",
    "floor-marble",
    "floor-other",
    "floor-stone",
    "floor-tile",
    "floor-wood",
    "flower",
    "fog",
    "food-other",
    "fruit",
    "furniture-other",
    "grass",
    "gravel",
    "ground-other",
    "hill",
    "house",
    "leaves",
    "light",
    "mat",
    "metal",
    "mirror-stuff",
    "moss",
    "mountain",
    "mud",
    "napkin",
    "net",
    "paper",
    "pavement",
    "pillow",
    "plant-other",
    "plastic",
    "platform",
    "playingfield",
    "railing",
    "railroad",
    "river",
    "road",
    "rock",
    "roof",
    "rug",
    "salad",
    "sand",
    "sea",
    "shelf",
    "sky-other",
    "skyscraper",
    "snow",
    "solid-other",
    "stairs",
    "stone",
    "straw",
    "structural-other",
    "table",
    "tent",
    "textile-other",
    "towel",
    "tree",
    "vegetable",
    "wall-brick",
    "wall-concrete",
    "wall-other",
    "wall-panel",
    "wall-stone",
    "wall-tile",
    "wall-wood",
    "water-other",
    "waterdrops",
    "window-blind",
    "window-other",
    "wood",
]  # ids 92..182
COCO_IDS = dict(enumerate(COCO_THINGS + COCO_STUFF, start=1))  # category id -> name or None


def test_coco_id_table_shape():
    assert len(COCO_IDS) == 182
    assert sum(n is not None for i, n in COCO_IDS.items() if i <= 91) == 80
    assert sum(n is not None for n in COCO_IDS.values()) == 171


def test_coco_stuff_171_table_complete():
    used = [cid for cid, n in COCO_IDS.items() if n is not None]
    conv = L.coco_stuff_171()
    values = np.arange(256, dtype=np.uint8)[None]
    valid = {cid - 1 for cid in used} | {255}
    expected = {cid - 1: rank for rank, cid in enumerate(used)} | {255: 255}
    accepted = [v for v in range(256) if v in valid]
    assert conv(np.array([accepted], dtype=np.uint8))[0].tolist() == [expected[v] for v in accepted]
    for v in set(range(256)) - valid:  # unused ids (e.g. 11 = street sign - 1) and 182..254 are rejected
        with pytest.raises(LabelError):
            conv(values[:, v : v + 1])
    assert first_names("coco_stuff") == [squash(COCO_IDS[cid]) for cid in used]


def test_coco_object_table_complete():
    things = [cid for cid, n in COCO_IDS.items() if n is not None and cid <= 91]
    stuff = [cid for cid, n in COCO_IDS.items() if n is not None and cid >= 92]
    conv = L.coco_object_81()
    src = np.array([[cid - 1 for cid in things] + [cid - 1 for cid in stuff] + [255]], dtype=np.uint8)
    assert conv(src)[0].tolist() == list(range(1, 81)) + [0] * 91 + [0]
    assert [squash(n) for n in BENCHMARKS["coco_object"].class_names[1:]] == [squash(COCO_IDS[c]) for c in things]


def test_reduce_zero_and_identity():
    rz = L.reduce_zero_label(150)
    assert rz(np.array([[0, 1, 2, 150, 255]], dtype=np.uint8))[0].tolist() == [255, 0, 1, 149, 255]
    with pytest.raises(LabelError, match="151"):
        rz(np.array([[1, 151]], dtype=np.uint8))
    ident = L.identity(21)
    assert ident(np.array([[0, 5, 20, 255]], dtype=np.uint8))[0].tolist() == [0, 5, 20, 255]
    with pytest.raises(LabelError, match="21"):
        ident(np.array([[21]], dtype=np.uint8))


@pytest.mark.parametrize(
    "mask, match",
    [
        (np.zeros((2, 2, 3), np.uint8), "2-D"),
        (np.zeros((2, 2), np.float32), "integers"),
        (np.array([[0, 300]], np.int32), "outside 0..255"),
        (np.array([[-1, 3]], np.int32), "outside 0..255"),
    ],
)
def test_bad_masks_fail_clearly(mask, match):
    with pytest.raises(LabelError, match=match):
        L.reduce_zero_label(20)(mask)


# -- real masks ------------------------------------------------------------------------------
def counts(a: np.ndarray) -> dict[int, int]:
    u, c = np.unique(a, return_counts=True)
    return dict(zip(u.tolist(), c.tolist()))


def test_ade20k_real_masks_reduce_zero_label():
    root = shared_data("ade20k")
    conv = BENCHMARKS["ade20k"].label_map
    # ADE_val_00000001: pixel counts read off the official PNG (0 = other)
    raw = np.asarray(Image.open(root / "annotations" / "ADE_val_00000001.png"))
    assert counts(raw) == {0: 3613, 1: 14538, 2: 123406, 3: 134492, 5: 8784, 7: 1755, 10: 53099, 18: 10009}
    assert counts(conv(raw)) == {0: 14538, 1: 123406, 2: 134492, 4: 8784, 6: 1755, 9: 53099, 17: 10009, 255: 3613}
    for png in sorted((root / "annotations").glob("*.png")):
        raw = np.asarray(Image.open(png))
        out = conv(raw)
        assert ((raw == 0) == (out == 255)).all()
        assert (out[raw > 0].astype(int) == raw[raw > 0].astype(int) - 1).all()
    # class k of the official objectInfo150.txt is class k-1 of our list
    rows = [line.split("\t") for line in (root / "objectInfo150.txt").read_text().splitlines()[1:]]
    official = [squash(r[-1].split(",")[0].strip()) for r in rows]
    assert len(official) == 150
    ours = first_names("ade20k")
    assert ours[2] == "sky" and official[2] == "sky"
    # the authors took each class's first official name, except class 90 (index 89), where they took the
    # second one ("television, television receiver, ..."): any other difference is a shifted list
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(ours, official)) if a != b]
    assert differ == [(89, "televisionreceiver", "television")]


def test_voc_real_mask_voc21_and_voc20_views():
    root = shared_data("voc2012")
    raw = np.asarray(Image.open(root / "294_label.png"))  # a P-mode PNG: palette indices
    assert counts(raw) == {0: 211903, 7: 27532, 15: 16147, 255: 7587}
    v21 = BENCHMARKS["voc21"].label_map(raw)
    v20 = BENCHMARKS["voc20"].label_map(raw)
    assert counts(v21) == counts(raw)
    assert counts(v20) == {6: 27532, 14: 16147, 255: 211903 + 7587}
    assert BENCHMARKS["voc21"].class_names[7] == "car" and BENCHMARKS["voc20"].class_names[6] == "car"
    assert BENCHMARKS["voc21"].class_names[15] == "person" and BENCHMARKS["voc20"].class_names[14] == "person"


def coco_stuffthing_map(root) -> np.ndarray:
    """What the official stuff-thing map holds for image 39769, rebuilt from its panoptic ground truth:
    category id - 1 for every segment, 255 where the panoptic map is void (id 0)."""
    rgb = np.asarray(Image.open(root / "coco_panoptic_000000039769.png")).astype(np.int64)
    seg_id = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
    out = np.full(seg_id.shape, 255, np.uint8)
    for seg in json.loads((root / "coco_panoptic_annotations.txt").read_text()):
        out[seg_id == seg["id"]] = seg["category_id"] - 1
    return out


def test_coco_real_masks_stuff_171_and_object():
    root = shared_data("coco")
    stuffthing = coco_stuffthing_map(root)
    assert counts(stuffthing) == {16: 112933, 62: 174579, 74: 6186, 92: 2750, 255: 10752}  # cat, couch, remote, blanket
    stuff = BENCHMARKS["coco_stuff"].label_map(stuffthing)
    obj = BENCHMARKS["coco_object"].label_map(stuffthing)
    # the sample folder's masks were derived independently (mmseg's id table, SCLIP's cvt_coco_object.py)
    approx171 = np.asarray(Image.open(root / "000000039769_cocostuff171_APPROX_from_panoptic.png"))
    approx81 = np.asarray(Image.open(root / "000000039769_cocoobject81_APPROX_from_panoptic.png"))
    assert np.array_equal(stuff, approx171)
    assert np.array_equal(obj, approx81)
    names171 = BENCHMARKS["coco_stuff"].class_names
    assert [names171[i] for i in (15, 57, 65, 81)] == ["cat", "couch", "remote", "blanket"]
    names81 = BENCHMARKS["coco_object"].class_names
    assert [names81[i] for i in (16, 58, 66)] == ["cat", "couch", "remote"]
    assert counts(obj) == {0: 2750 + 10752, 16: 112933, 58: 174579, 66: 6186}  # blanket (stuff) and void -> 0

"""Benchmarks' original folder layouts (the official downloads) -> ordered (name, image, mask) pairs.

The order is the split file's where the benchmark has one (VOC, PASCAL Context), else sorted file
names, so a subset of the first N pairs is the same every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pair", "LAYOUTS", "find_pairs"]


@dataclass(frozen=True)
class Pair:
    name: str
    image: Path
    mask: Path


class LayoutError(FileNotFoundError):
    """A local folder is not in the layout its benchmark expects; the message shows the layout."""


def _split_file_pairs(root: Path, split_file: str, mask_dir: str) -> list[Pair]:
    ids_file = root / split_file
    if not ids_file.is_file():
        raise LayoutError(f"missing {ids_file}")
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    return [Pair(i, root / "JPEGImages" / f"{i}.jpg", root / mask_dir / f"{i}.png") for i in ids]


def _voc(root: Path) -> list[Pair]:
    return _split_file_pairs(root, "ImageSets/Segmentation/val.txt", "SegmentationClass")


def _context(root: Path) -> list[Pair]:
    return _split_file_pairs(root, "ImageSets/SegmentationContext/val.txt", "SegmentationClassContext")


def _matched(images: list[Path], mask_of) -> list[Pair]:
    return [Pair(p.stem, p, mask_of(p)) for p in sorted(images)]


def _ade20k(root: Path) -> list[Pair]:
    images = list((root / "images" / "validation").glob("*.jpg"))
    return _matched(images, lambda p: root / "annotations" / "validation" / f"{p.stem}.png")


def _coco(root: Path) -> list[Pair]:
    images = list((root / "images" / "val2017").glob("*.jpg"))
    return _matched(images, lambda p: root / "annotations" / "val2017" / f"{p.stem}.png")


def _cityscapes(root: Path) -> list[Pair]:
    suffix = "_leftImg8bit.png"
    images = list((root / "leftImg8bit" / "val").glob(f"*/*{suffix}"))

    def mask_of(p: Path) -> Path:
        return root / "gtFine" / "val" / p.parent.name / p.name.replace(suffix, "_gtFine_labelIds.png")

    return _matched(images, mask_of)


# layout name -> (reader, the layout in words, for error messages)
LAYOUTS = {
    "voc": (_voc, "VOC2012/ with JPEGImages/*.jpg, SegmentationClass/*.png, ImageSets/Segmentation/val.txt"),
    "context": (
        _context,
        "VOC2010/ with JPEGImages/*.jpg, SegmentationClassContext/*.png (0..59, 0 = background, as mmseg "
        "prepares them), ImageSets/SegmentationContext/val.txt",
    ),
    "ade20k": (_ade20k, "ADEChallengeData2016/ with images/validation/*.jpg, annotations/validation/*.png"),
    "coco": (
        _coco,
        "coco_stuff164k/ with images/val2017/*.jpg and annotations/val2017/*.png (the official "
        "stuffthingmaps_trainval2017 val2017 maps: category id - 1, 255 unlabeled)",
    ),
    "cityscapes": (
        _cityscapes,
        "cityscapes/ with leftImg8bit/val/<city>/*_leftImg8bit.png, gtFine/val/<city>/*_gtFine_labelIds.png",
    ),
}


def find_pairs(root: str | Path, layout: str) -> list[Pair]:
    """The (image, mask) pairs of a local folder in a benchmark's original layout, in a fixed order."""
    reader, words = LAYOUTS[layout]
    root = Path(root)
    try:
        pairs = reader(root)
    except LayoutError as e:
        raise LayoutError(f"{root} is not in the expected layout ({e}); expected {words}") from None
    if not pairs:
        raise LayoutError(f"no images found under {root}; expected {words} (or the hub repo's parquet files)")
    for pair in pairs:
        for path in (pair.image, pair.mask):
            if not path.is_file():
                raise LayoutError(f"missing {path} (for {pair.name}); expected {words}")
    return pairs

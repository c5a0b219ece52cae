"""Label conversions: the values a benchmark's masks hold -> the class indices it scores (255 = ignore).

Each conversion is a lookup table over the 256 values an 8-bit mask can hold. An entry of -1 marks a
value the source must never hold, so converting a mask also checks it: a mask from the wrong source
(RGB colours, already-converted ids, another benchmark) fails with the offending values named.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "IGNORE",
    "LabelMap",
    "COCO_THING_IDS",
    "COCO_STUFF_IDS",
    "CITYSCAPES_LABEL_TO_TRAIN",
    "identity",
    "reduce_zero_label",
    "cityscapes_to_train_ids",
    "coco_stuff_171",
    "coco_object_81",
]

IGNORE = 255
_INVALID = -1


class LabelError(ValueError):
    """A mask holds values its benchmark's source never holds."""


@dataclass(frozen=True)
class LabelMap:
    """A conversion from source mask values to scored class indices (or 255, ignored)."""

    name: str
    description: str
    table: tuple[int, ...]  # 256 entries: the class index of each source value, 255 ignore, -1 invalid

    def __post_init__(self) -> None:
        if len(self.table) != 256:
            raise ValueError(f"a label table has 256 entries, got {len(self.table)}")

    @cached_property
    def lut(self) -> np.ndarray:
        return np.asarray(self.table, dtype=np.int16)

    @property
    def valid_values(self) -> list[int]:
        """The source values this conversion accepts."""
        return [v for v, t in enumerate(self.table) if t != _INVALID]

    def __call__(self, mask, where: str = "mask") -> np.ndarray:
        """Convert a source mask ``(H, W)`` of integers to class indices ``(H, W)`` uint8 (255 ignore)."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise LabelError(
                f"{where}: expected a 2-D mask of class values, got shape {mask.shape} "
                "(colour masks must be converted to class indices first)"
            )
        if not np.issubdtype(mask.dtype, np.integer):
            raise LabelError(f"{where}: mask values must be integers, got dtype {mask.dtype}")
        lo, hi = (int(mask.min()), int(mask.max())) if mask.size else (0, 0)
        if lo < 0 or hi > 255:
            raise LabelError(
                f"{where}: mask values {lo}..{hi} lie outside 0..255; this benchmark expects {self._expected()}"
            )
        out = self.lut[mask.astype(np.uint8, copy=False)]
        if (out == _INVALID).any():
            bad = np.unique(mask[out == _INVALID]).tolist()
            raise LabelError(
                f"{where}: mask holds values {bad[:12]}{' ...' if len(bad) > 12 else ''} that this benchmark's "
                f"masks never hold; it expects {self._expected()}. Is this the right source for the benchmark?"
            )
        return out.astype(np.uint8)

    def _expected(self) -> str:
        return f"{self.description} (accepted values: {_ranges(self.valid_values)})"


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5, 255]`` -> ``"0-2, 5, 255"``."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(f"{start}-{v}" if v > start else f"{v}")
            start = None
    return ", ".join(parts)


def _table(mapping: dict[int, int]) -> tuple[int, ...]:
    table = [_INVALID] * 256
    for src, dst in mapping.items():
        table[src] = dst
    return tuple(table)


def identity(num_classes: int) -> LabelMap:
    """Values 0..num_classes-1 kept (0 is the scored background), 255 ignored: VOC21, Context60."""
    return LabelMap(
        "identity",
        f"labels 0..{num_classes - 1} with 0 = background (scored), 255 = ignore",
        _table({**{v: v for v in range(num_classes)}, IGNORE: IGNORE}),
    )


def reduce_zero_label(num_classes: int) -> LabelMap:
    """0 -> 255 (ignored), k -> k-1 for k in 1..num_classes, 255 stays ignored: ADE20K, Context59, VOC20."""
    return LabelMap(
        "reduce-zero-label",
        f"labels 0..{num_classes} where 0 (background / other) is ignored and k becomes k-1",
        _table({0: IGNORE, **{v: v - 1 for v in range(1, num_classes + 1)}, IGNORE: IGNORE}),
    )


# Cityscapes (cityscapesScripts labels.py): label id -> train id for the 19 evaluated classes.
CITYSCAPES_LABEL_TO_TRAIN = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


def cityscapes_to_train_ids() -> LabelMap:
    """Official label ids 0..33 -> the 19 train ids; every other id (and 255) -> 255."""
    return LabelMap(
        "cityscapes-label-ids",
        "Cityscapes label ids 0..33 (gtFine_labelIds), 255 = ignore",
        _table({**{v: CITYSCAPES_LABEL_TO_TRAIN.get(v, IGNORE) for v in range(34)}, IGNORE: IGNORE}),
    )


# COCO category ids: 80 things in 1..90 (ids never used by the released annotations are missing) and
# 91 stuff classes 92..182. The official stuff-thing maps store id - 1 per pixel, 255 unlabeled.
_UNUSED_THING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_THING_IDS = tuple(i for i in range(1, 91) if i not in _UNUSED_THING_IDS)
COCO_STUFF_IDS = tuple(range(92, 183))


def coco_stuff_171() -> LabelMap:
    """Stuff-thing map values (category id - 1) -> 171 train ids: things then stuff in id order."""
    ids = COCO_THING_IDS + COCO_STUFF_IDS
    return LabelMap(
        "coco-stuff-171",
        "COCO-Stuff stuff-thing maps: category id - 1 (0..181, with gaps), 255 = unlabeled",
        _table({**{cid - 1: train for train, cid in enumerate(ids)}, IGNORE: IGNORE}),
    )


def coco_object_81() -> LabelMap:
    """Stuff-thing map values -> COCO-Object: the 80 things become 1..80; stuff and unlabeled become 0."""
    things = {cid - 1: i + 1 for i, cid in enumerate(COCO_THING_IDS)}
    return LabelMap(
        "coco-object-81",
        "COCO-Stuff stuff-thing maps: category id - 1 (0..181, with gaps), 255 = unlabeled",
        _table({**{cid - 1: 0 for cid in COCO_STUFF_IDS}, **things, IGNORE: 0}),
    )

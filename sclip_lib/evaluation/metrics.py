"""Mean IoU as the paper's tables define it: accumulated over the whole dataset, not per image.

A subset's mIoU is an estimate of the full set's; :func:`bootstrap_miou` gives its percentile bootstrap
confidence interval over images, from the per-image intersection and union sums that :class:`MeanIoU`
keeps (resampling images with replacement and recomputing the dataset-level mIoU each time).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["MeanIoU", "IoUResult", "bootstrap_miou", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "BOOTSTRAP_LEVEL"]

BOOTSTRAP_RESAMPLES = 1000  # resamples of the images for a confidence interval
BOOTSTRAP_SEED = 0  # the default seed: the same result files give the same interval everywhere
BOOTSTRAP_LEVEL = 0.95


@dataclass
class IoUResult:
    """What :meth:`MeanIoU.compute` returns.

    Attributes:
        miou: the mean IoU in percent, over the classes with a defined IoU.
        iou: per class, in percent; NaN where a class is in neither the predictions nor the ground truth.
        num_pixels: the ground-truth pixels scored (not ignored).
        class_names: one name per class, for :meth:`per_class`; None: the class indices.
    """

    miou: float
    iou: list[float]
    num_pixels: int
    class_names: list[str] | None = field(default=None)

    def per_class(self) -> dict:
        """``{class name: IoU in percent}``."""
        names = self.class_names or [str(i) for i in range(len(self.iou))]
        return dict(zip(names, self.iou))


class MeanIoU:
    """Accumulates per-class intersection, prediction and ground-truth areas over a dataset.

    ``IoU_c = I_c / (P_c + G_c - I_c)``; ``mIoU = 100 * nanmean(IoU)``, where a class absent from both
    prediction and ground truth over the whole set is NaN and left out. Pixels whose ground truth is
    ``ignore_index`` are not scored.

    ``per_image`` keeps, for every image, the classes it touches as ``[class, intersection, union]``
    triples (union = prediction + ground truth - intersection, all in pixels), for
    :func:`bootstrap_miou`; their sums over the images are the dataset's sums.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, class_names: list[str] | None = None) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
            raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__} {num_classes!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}")
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names
        self.reset()

    def reset(self) -> None:
        self.intersection = torch.zeros(self.num_classes, dtype=torch.float64)
        self.pred_area = torch.zeros(self.num_classes, dtype=torch.float64)
        self.target_area = torch.zeros(self.num_classes, dtype=torch.float64)
        self.per_image: list[list[list[int]]] | None = []  # None: unknown (e.g. resumed from an older file)

    def update(self, pred, target) -> None:
        """Add one image: ``pred`` and ``target`` are integer label maps of the same shape."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)  # tensors, numpy arrays or lists
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(target.shape)} differ in shape")
        if pred.is_floating_point() or target.is_floating_point():
            raise ValueError("prediction and ground truth must be integer label maps")
        pred, target = pred.flatten().cpu().long(), target.flatten().cpu().long()
        valid = target != self.ignore_index
        pred, target = pred[valid], target[valid]
        for name, t in (("ground truth", target), ("prediction", pred)):
            if t.numel() and (t.min() < 0 or t.max() >= self.num_classes):
                raise ValueError(
                    f"{name} holds label {int(t.max() if t.max() >= self.num_classes else t.min())} outside "
                    f"0..{self.num_classes - 1} (ignore index {self.ignore_index})"
                )
        n = self.num_classes
        inter = torch.bincount(target[pred == target], minlength=n)
        pred_area, target_area = torch.bincount(pred, minlength=n), torch.bincount(target, minlength=n)
        self.intersection += inter.double()
        self.pred_area += pred_area.double()
        self.target_area += target_area.double()
        if self.per_image is not None:
            union = pred_area + target_area - inter
            touched = union.nonzero().flatten().tolist()
            self.per_image.append([[c, int(inter[c]), int(union[c])] for c in touched])

    def compute(self) -> IoUResult:
        union = self.pred_area + self.target_area - self.intersection
        iou = torch.where(union > 0, self.intersection / union.clamp(min=1), torch.full_like(union, float("nan")))
        defined = iou[~iou.isnan()]
        miou = float(defined.mean() * 100) if defined.numel() else float("nan")
        return IoUResult(miou, (iou * 100).tolist(), int(self.target_area.sum()), self.class_names)


def bootstrap_miou(
    per_image: Sequence[Sequence[Sequence[int]]],
    num_classes: int,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = BOOTSTRAP_LEVEL,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval (percent) of the dataset-level mIoU over images.

    ``per_image``: one list of ``[class, intersection, union]`` per image (:attr:`MeanIoU.per_image`).
    Each resample draws as many images as there are, with replacement, sums their intersections and
    unions per class and computes mIoU exactly as :class:`MeanIoU` does (classes with no union left
    out). Seeded, and the images are put in a canonical order first, so the same per-image sums give the
    same interval in any order (a sharded run's, say).
    """
    n = len(per_image)
    if n == 0:
        raise ValueError("no per-image sums: a confidence interval needs at least one image")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 1:
        raise ValueError(f"resamples must be a positive int, got {resamples!r}")
    inter, union = np.zeros((n, num_classes)), np.zeros((n, num_classes))
    # a canonical order: the same images give the same interval however they were ordered or sharded
    canonical = sorted(tuple(tuple(int(x) for x in t) for t in image) for image in per_image)
    for i, image in enumerate(canonical):
        for c, a, u in image:
            inter[i, c], union[i, c] = a, u
    rng = np.random.default_rng(seed)
    scores = []
    for start in range(0, resamples, 256):  # chunks keep the (resamples, images) weights small
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(256, resamples - start)).astype(np.float64)
        i_b, u_b = counts @ inter, counts @ union
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(u_b > 0, i_b / np.maximum(u_b, 1), np.nan)
        defined = ~np.isnan(iou)
        with np.errstate(invalid="ignore"):
            scores.append(100 * np.nansum(iou, axis=1) / defined.sum(axis=1))
    scores = np.concatenate(scores)
    scores = scores[~np.isnan(scores)]
    low, high = np.quantile(scores, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)

"""Mean IoU as the paper's tables define it: accumulated over the whole dataset, not per image."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch

__all__ = ["MeanIoU", "IoUResult"]


@dataclass
class IoUResult:
    miou: float  # percent, mean over classes with a defined IoU
    iou: list[float]  # per class, percent; NaN where a class is in neither prediction nor ground truth
    num_pixels: int  # scored (not ignored) ground-truth pixels
    class_names: list[str] | None = field(default=None)

    def per_class(self) -> dict:
        names = self.class_names or [str(i) for i in range(len(self.iou))]
        return dict(zip(names, self.iou))


class MeanIoU:
    """Accumulates per-class intersection, prediction and ground-truth areas over a dataset.

    ``IoU_c = I_c / (P_c + G_c - I_c)``; ``mIoU = 100 * nanmean(IoU)``, where a class absent from both
    prediction and ground truth over the whole set is NaN and left out. Pixels whose ground truth is
    ``ignore_index`` are not scored.
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
        self.intersection += torch.bincount(target[pred == target], minlength=n).double()
        self.pred_area += torch.bincount(pred, minlength=n).double()
        self.target_area += torch.bincount(target, minlength=n).double()

    def compute(self) -> IoUResult:
        union = self.pred_area + self.target_area - self.intersection
        iou = torch.where(union > 0, self.intersection / union.clamp(min=1), torch.full_like(union, float("nan")))
        defined = iou[~iou.isnan()]
        miou = float(defined.mean() * 100) if defined.numel() else float("nan")
        return IoUResult(miou, (iou * 100).tolist(), int(self.target_area.sum()), self.class_names)

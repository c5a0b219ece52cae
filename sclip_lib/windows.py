"""Sliding-window geometry: where each crop of the resized image lies."""

from __future__ import annotations

__all__ = ["sliding_windows", "window_count"]


def window_count(size: int, crop: int, stride: int) -> int:
    """Windows along one axis: ``max(size - crop + stride - 1, 0) // stride + 1``."""
    return max(size - crop + stride - 1, 0) // stride + 1


def sliding_windows(height: int, width: int, crop: int | tuple[int, int] = 224, stride: int | tuple[int, int] = 112):
    """Windows ``(y1, y2, x1, x2)`` covering an image, row by row.

    The last window of each axis is snapped back to the border so none is padded; along an axis
    shorter than the crop, the one window is the whole axis. All windows therefore share one size,
    which lets them go through the encoder as one batch.
    """
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if min(height, width, ch, cw, sh, sw) < 1:
        raise ValueError(
            f"image size, crop and stride must be positive; got {height}x{width}, crop {crop}, stride {stride}"
        )
    windows = []
    for row in range(window_count(height, ch, sh)):
        for col in range(window_count(width, cw, sw)):
            y2 = min(row * sh + ch, height)
            x2 = min(col * sw + cw, width)
            windows.append((max(y2 - ch, 0), y2, max(x2 - cw, 0), x2))
    return windows

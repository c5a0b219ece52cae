"""Colours and overlays for label maps (palettes from imgviz), shared by the CLI and the book."""

from __future__ import annotations

import imgviz
import numpy as np
from PIL import Image, ImageDraw

from .images import as_image_tensor

__all__ = ["palette", "colorize", "overlay", "stamp_smoke"]

SMOKE_TEXT = "SMOKE MODE: untrained weights, results not meaningful"


def palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8 colours, PASCAL VOC's for the first 21 (class 0 black); repeats past 256."""
    return np.resize(imgviz.label_colormap(), (num_classes, 3))


def colorize(mask) -> Image.Image:
    """A palette PNG of a label map ``(H, W)``: the label values are kept, colours come with them."""
    mask = np.asarray(mask)
    if mask.max(initial=0) > 255 or mask.min(initial=0) < 0:
        raise ValueError("label maps with values outside 0..255 cannot be saved as a palette PNG")
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(palette(256).flatten().tolist())
    return img


def overlay(image, mask, labels: list[str] | None = None, alpha: float = 0.5) -> Image.Image:
    """The image with the label map blended over it, and a legend of the classes present."""
    rgb = (as_image_tensor(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    mask = np.asarray(mask)
    names = None
    if labels is not None:
        present = set(np.unique(mask).tolist())
        names = [n if i in present else "" for i, n in enumerate(labels)]
    out = imgviz.label2rgb(mask, image=rgb, alpha=alpha, label_names=names, loc="rb" if names else "centroid")
    return Image.fromarray(out)


def stamp_smoke(img: Image.Image) -> Image.Image:
    """Write the smoke-mode warning across the top of an image (a copy)."""
    img = img.convert("RGB").copy()
    draw = ImageDraw.Draw(img)
    height = max(14, img.height // 25)
    draw.rectangle([0, 0, img.width, height + 6], fill=(200, 0, 0))
    draw.text((4, 3), SMOKE_TEXT, fill=(255, 255, 255))
    return img

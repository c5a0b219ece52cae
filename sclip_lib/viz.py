"""Colours and overlays for label maps (palettes from imgviz), shared by the CLI and the book."""

from __future__ import annotations

import io
from pathlib import Path

import imgviz
import numpy as np
from PIL import Image, ImageDraw

from .files import write_atomic
from .images import as_image_tensor

__all__ = [
    "palette",
    "colorize",
    "overlay",
    "check_overlay_size",
    "save_atomic",
    "stamp_smoke",
    "query_attention",
    "plot_query_attention",
    "mark_patch",
]

SMOKE_TEXT = "SMOKE MODE: untrained weights, results not meaningful"


def palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8 colours, PASCAL VOC's for the first 21 (class 0 black); repeats past 256."""
    return np.resize(imgviz.label_colormap(), (num_classes, 3))


MAX_LABELS = 65536  # a 16-bit grey PNG holds class indices 0..65535


def colorize(mask, num_classes: int | None = None) -> Image.Image:
    """A PNG-ready image of a label map ``(H, W)`` whose pixel values are the class indices.

    Up to 256 classes: a palette image (8-bit indices, colours come with them). More classes (or
    ``num_classes`` > 256, so one class list always gives one format): a 16-bit greyscale image
    (``I;16``), which holds indices 0..65535 but no colours; read it with ``np.asarray(Image.open(path))``.
    """
    mask = np.asarray(mask)
    low, high = int(mask.min(initial=0)), int(mask.max(initial=0))
    if low < 0 or high >= MAX_LABELS:
        raise ValueError(f"label maps hold class indices 0..{MAX_LABELS - 1}; this one holds {low}..{high}")
    if high > 255 or (num_classes or 0) > 256:
        return Image.fromarray(mask.astype(np.uint16))  # mode I;16
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(palette(256).flatten().tolist())
    return img


MAX_OVERLAY_PIXELS = 40_000_000  # imgviz blends in float: ~50 bytes per pixel, 2 GB at this size
_OVERLAY_BYTES_PER_PIXEL = 50


def check_overlay_size(height: int, width: int) -> None:
    """Refuse overlays too large to draw in bounded memory, before any work is done."""
    if height * width > MAX_OVERLAY_PIXELS:
        need = height * width * _OVERLAY_BYTES_PER_PIXEL / 1e9
        raise ValueError(
            f"an overlay of a {width}x{height} image needs about {need:.0f} GB of memory; overlays are drawn "
            f"up to {MAX_OVERLAY_PIXELS / 1e6:.0f} million pixels. Drop --overlay (the mask has no such limit) "
            "or resize the image first"
        )


def save_atomic(img: Image.Image, path, *, exclusive: bool = False) -> None:
    """Save an image (format from the file name) atomically: a reader never sees half a file.

    ``exclusive=True``: never replace an existing file (see :func:`sclip_lib.files.write_atomic`)."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension; use .png")
    buf = io.BytesIO()
    (img.convert("RGB") if fmt == "JPEG" and img.mode not in ("RGB", "L") else img).save(buf, format=fmt)
    write_atomic(path, buf.getvalue(), exclusive=exclusive)


def overlay(image, mask, labels: list[str] | None = None, alpha: float = 0.5) -> Image.Image:
    """The image with the label map blended over it, and a legend of the classes present.

    Images above :data:`MAX_OVERLAY_PIXELS` are refused with a ``ValueError`` (memory).
    """
    mask = np.asarray(mask)
    check_overlay_size(*mask.shape[:2])
    rgb = (as_image_tensor(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    names = None
    if labels is not None:
        present = set(np.unique(mask).tolist())
        names = [n if i in present else "" for i, n in enumerate(labels)]
    # imgviz's own colour map has 256 entries; more classes take the palette's repeating colours
    colormap = palette(int(mask.max()) + 1) if mask.max(initial=0) > 255 else None
    out = imgviz.label2rgb(
        mask, image=rgb, alpha=alpha, label_names=names, loc="rb" if names else "centroid", colormap=colormap
    )
    return Image.fromarray(out)


def stamp_smoke(img: Image.Image) -> Image.Image:
    """Write the smoke-mode warning across the top of an image (a copy)."""
    img = img.convert("RGB").copy()
    draw = ImageDraw.Draw(img)
    height = max(14, img.height // 25)
    draw.rectangle([0, 0, img.width, height + 6], fill=(200, 0, 0))
    draw.text((4, 3), SMOKE_TEXT, fill=(255, 255, 255))
    return img


# -- attention maps (the book's chapters 3 and 4) --------------------------------------------------
def query_attention(attn, grid: tuple[int, int], queries: list[tuple[int, int]]) -> np.ndarray:
    """Attention rows of query patches as maps: ``(len(queries), rows, cols)``.

    ``attn`` is ``(heads, L, L)`` or ``(L, L)`` with CLS as token 0 (heads are averaged); each query
    is a patch ``(row, col)`` on ``grid``; the CLS column is dropped from the maps.
    """
    import torch

    a = torch.as_tensor(attn).float()
    if a.ndim == 3:
        a = a.mean(0)
    rows, cols = grid
    idx = [1 + r * cols + c for r, c in queries]
    return a[idx, 1:].reshape(len(queries), rows, cols).cpu().numpy()


def mark_patch(ax, query: tuple[int, int], grid: tuple[int, int], image_size: tuple[int, int], color="red") -> None:
    """Draw the square of patch ``query`` (row, col) on an axis that shows an image of ``image_size`` (H, W)."""
    from matplotlib.patches import Rectangle

    h, w = image_size[0] / grid[0], image_size[1] / grid[1]
    ax.add_patch(Rectangle((query[1] * w, query[0] * h), w, h, fill=False, edgecolor=color, linewidth=2))


def plot_query_attention(image, maps: np.ndarray, queries, grid, axes, cmap: str = "inferno") -> None:
    """Each query's attention map over the image, its patch marked, one axis per query."""
    from PIL import Image as _Image

    rgb = (as_image_tensor(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    size = rgb.shape[:2]
    for ax, m, q in zip(axes, maps, queries):
        heat = np.asarray(_Image.fromarray(m.astype(np.float32)).resize((size[1], size[0]), _Image.NEAREST))
        ax.imshow(rgb)
        ax.imshow(heat, cmap=cmap, alpha=0.6)
        mark_patch(ax, q, grid, size, color="cyan")
        ax.axis("off")

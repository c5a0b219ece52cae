"""Accept the image types users have (PIL, numpy, torch) and turn them into one checked form."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

__all__ = ["as_image_tensor", "upright", "resized_size", "resize_to_fit", "normalize"]


def as_image_tensor(image) -> torch.Tensor:
    """An RGB float tensor ``(3, H, W)`` in [0, 1] from a PIL image, a numpy array or a tensor.

    Accepted: any PIL image, turned upright by its EXIF orientation tag first (as every viewer shows
    it; the mask then lines up with what the user sees), converted to RGB from grayscale, RGBA,
    palette or CMYK; 16-bit (``I;16``) and 32-bit integer (``I``) images are read as 16-bit values
    (``/ 65535``), float (``F``) images must hold values in [0, 1]. A uint8 numpy array
    ``(H, W, 3)``, ``(H, W, 4)`` (alpha dropped) or ``(H, W)`` (grayscale); a float tensor
    ``(3, H, W)`` or ``(1, H, W)`` with values in [0, 1]. Anything else is a ``ValueError`` or
    ``TypeError`` that says how to convert it.
    """
    if isinstance(image, Image.Image):
        image = upright(_loaded(image))
        if image.mode in _WIDE_MODES:
            image = _wide_to_tensor(image)
        else:
            image = np.asarray(_rgb(image))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(
                f"numpy images must be uint8 (H, W, 3), got dtype {image.dtype}; for floats in [0, 1] pass "
                "torch.from_numpy(img).permute(2, 0, 1) instead"
            )
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"numpy images must be (H, W), (H, W, 3) or (H, W, 4); got shape {image.shape}")
        tensor = torch.from_numpy(np.array(image[..., :3])).permute(2, 0, 1).float() / 255.0
    elif isinstance(image, torch.Tensor):
        if image.layout != torch.strided:
            raise ValueError(f"tensor images must be dense; got a {image.layout} tensor: pass image.to_dense()")
        if not image.is_floating_point():
            raise ValueError(
                f"tensor images must be float (3, H, W) in [0, 1]; got dtype {image.dtype} (divide by 255)"
            )
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(
                f"tensor images must be (3, H, W) or (1, H, W), channels first; got shape {tuple(image.shape)}"
            )
        tensor = image.detach().float().cpu().expand(3, -1, -1)
        if tensor.numel() == 0:
            raise ValueError(f"the image is empty: size {tuple(tensor.shape[1:])}")
        if not torch.isfinite(tensor).all():
            raise ValueError("the image tensor holds NaN or infinite values")
        if tensor.min() < 0 or tensor.max() > 1:
            raise ValueError(
                f"tensor images must hold values in [0, 1]; got [{_shown(tensor.min())}, {_shown(tensor.max())}] "
                "(divide 0..255 data by 255; pass images before CLIP normalisation, which is done here)"
            )
    else:
        raise TypeError(f"expected a PIL image, a uint8 numpy array or a float tensor, got {type(image).__name__}")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise ValueError(f"the image is empty: size {tuple(tensor.shape[1:])}")
    return tensor.contiguous()


_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# modes Pillow cannot turn into RGB directly, and the mode that bridges them (premultiplied alpha)
_RGB_VIA = {"La": "LA"}


def _shown(value) -> str:
    """A value for a [0, 1] range message: 3 digits, unless rounding would hide why it is out of range
    (1.0000001 is not shown as 1)."""
    value = float(value)
    short = f"{value:.3g}"
    return short if (0 <= float(short) <= 1) == (0 <= value <= 1) else repr(value)


def _loaded(image: Image.Image) -> Image.Image:
    """The image decoded now: ``Image.open`` reads lazily, so a damaged file fails here, with the fix."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's decoders raise all three
        name = getattr(image, "filename", "") or "the image"
        raise ValueError(
            f"cannot read {name}: {err}. The file is damaged or truncated: download or export it again "
            "(PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True reads what there is of a truncated file)"
        ) from None
    return image


def _rgb(image: Image.Image) -> Image.Image:
    """The image in RGB, from any Pillow mode (some, like premultiplied 'La', need a bridge)."""
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError:
        if image.mode not in _RGB_VIA:
            raise ValueError(f"PIL mode {image.mode!r} cannot be converted to RGB: convert the image first") from None
        return image.convert(_RGB_VIA[image.mode]).convert("RGB")


def upright(image: Image.Image) -> Image.Image:
    """The image as viewers display it: rotated/flipped by its EXIF orientation tag (a no-op without one)."""
    if image.getexif().get(0x0112, 1) in (0, 1):  # no rotation: skip exif_transpose's copy
        return image
    return ImageOps.exif_transpose(image)


def _wide_to_tensor(image: Image.Image) -> torch.Tensor:
    """A 16-bit, 32-bit integer or float grayscale PIL image as a ``(1, H, W)`` tensor in [0, 1].

    ``convert("RGB")`` would clip these to 0..255 and give a nearly white image.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        if not np.isfinite(values).all() or values.min(initial=0) < 0 or values.max(initial=0) > 1:
            raise ValueError(
                f"float ('F' mode) images must hold values in [0, 1]; got [{_shown(values.min())}, {_shown(values.max())}]: "
                "scale it first, e.g. Image.fromarray(arr / arr.max())"
            )
        return torch.from_numpy(values).float()[None]
    if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
        raise ValueError(
            f"32-bit integer ('I' mode) images are read as 16-bit values 0..65535; this one holds "
            f"[{values.min():.0f}, {values.max():.0f}]: scale it to 0..65535 (or 0..255 and convert('L')) first"
        )
    return torch.from_numpy(values / 65535.0).float()[None]


def resized_size(height: int, width: int, short_side: int, long_side: int = 2048) -> tuple[int, int]:
    """The ``(h, w)`` that :func:`resize_to_fit` gives an image of ``height x width``."""
    scale = min(long_side / max(height, width), short_side / min(height, width))
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_to_fit(image: torch.Tensor, short_side: int, long_side: int = 2048) -> torch.Tensor:
    """Resize ``(..., H, W)`` keeping aspect ratio so it fits inside (long_side, short_side).

    The short side becomes ``short_side`` unless the long side would exceed ``long_side``. Bilinear
    without antialiasing, like the authors' OpenCV ``INTER_LINEAR`` (computed here in float, not uint8).
    """
    h, w = image.shape[-2:]
    size = resized_size(h, w, short_side, long_side)
    if size == (h, w):
        return image
    batched = image if image.ndim == 4 else image[None]
    out = F.interpolate(batched, size=size, mode="bilinear", align_corners=False, antialias=False)
    return out if image.ndim == 4 else out[0]


def normalize(image: torch.Tensor, mean, std) -> torch.Tensor:
    """Channel-wise ``(x - mean) / std`` for an RGB tensor ``(..., 3, H, W)``."""
    mean = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean) / std

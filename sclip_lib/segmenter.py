"""``Segmenter``: an image and class names in, per-pixel classes out, by the paper's pipeline.

    resize -> sliding windows (batched) -> dense features -> cosine with text -> merge windows
           -> upsample to the original size -> [PAMR] -> softmax -> synonym max -> thresholds

``inference="whole"`` replaces the sliding windows by one pass over the whole resized image (NACLIP's
VOC protocol, MaskCLIP's), with the positional embedding resized to its patch grid.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TypeVar

import torch
from torch import nn

from .attention import AttentionVariant
from .devices import check_device
from .encoder import POS_RESIZE_RULES, DenseEncoder
from .models import weights_info
from .stages import Stages
from .text import OPENAI_IMAGENET_TEMPLATES, ClassNames, ClassSpec, check_templates, parse_classes

__all__ = ["Segmenter", "Settings"]

T = TypeVar("T")
INFERENCE_MODES = ("slide", "whole")
# What PAMR takes its affinities from. "network": the CLIP-normalised, resized network input,
# bilinearly upsampled to the original size, as the SCLIP and NACLIP code do (clip_segmentor.py
# forward_slide / naclip.py predict). "original": the original image in [0, 1] (sharper edges).
PAMR_IMAGES = ("network", "original")


@dataclass(frozen=True)
class Settings:
    """Inference settings; the defaults are the paper's for most benchmarks (reference section 3).

    Attributes:
        short_side: the image is resized (aspect kept) so its short side is this, ...
        long_side: ... unless its long side would pass this; then the long side is this.
        crop: the sliding window's side in pixels of the resized image.
        stride: the step between windows (<= ``crop``).
        logit_scale: the temperature of the softmax over classes: probabilities are
            ``softmax(logit_scale * cosine)`` (the paper: 40 to 75 by benchmark).
        prob_thd: pixels whose top class probability is below this go to class 0, the background
            (needs a background class; 0: off).
        area_thd: classes covering less than this fraction of the image are dropped to the background
            (needs a background class; None: off).
        pamr: refine the full-size logits with PAMR before the softmax.
        pamr_iterations: PAMR's iterations (the paper's 10).
        pamr_dilations: PAMR's neighbourhood dilations (the paper's 8 and 16).
        pamr_image: which image PAMR takes its affinities from, one of :data:`PAMR_IMAGES`.
        batch_size: windows per encoder call (memory, not results).
        inference: ``"slide"`` windows, or ``"whole"``: one pass over the whole resized image.
        pos_resize: the positional-embedding resize rule, one of ``encoder.POS_RESIZE_RULES``.
        final_blocks: the attention variant runs in the last N blocks (1: the papers').
        mean, std: the image normalisation; None: the model's own.
    """

    short_side: int = 336
    long_side: int = 2048
    crop: int = 224
    stride: int = 112
    logit_scale: float = 40.0
    prob_thd: float = 0.0
    area_thd: float | None = None
    pamr: bool = False
    pamr_iterations: int = 10
    pamr_dilations: tuple[int, ...] = (8, 16)
    pamr_image: str = "network"
    batch_size: int = 16
    inference: str = "slide"
    pos_resize: str = "scale_factor"
    final_blocks: int = 1
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        # every check here runs at construction, before any compute, and names the argument
        for name in ("short_side", "long_side", "crop", "stride", "batch_size", "pamr_iterations", "final_blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        for name in ("logit_scale", "prob_thd", "area_thd"):
            value = getattr(self, name)
            if (value is not None or name != "area_thd") and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)
            ):
                raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        if not (math.isfinite(self.logit_scale) and self.logit_scale > 0):
            raise ValueError(
                f"logit_scale must be a finite number > 0 (the paper uses 40 to 75), got {self.logit_scale}"
            )
        if self.stride > self.crop:
            raise ValueError(
                f"stride {self.stride} is larger than crop {self.crop}: the windows would leave image columns "
                "uncovered; use a stride <= crop (the paper: crop 224, stride 112)"
            )
        if not 0 <= self.prob_thd <= 1:
            raise ValueError(f"prob_thd must lie in [0, 1], got {self.prob_thd}")
        if self.area_thd is not None and not 0 <= self.area_thd <= 1:
            raise ValueError(f"area_thd must lie in [0, 1] or be None, got {self.area_thd}")
        for name, allowed in (
            ("inference", INFERENCE_MODES),
            ("pamr_image", PAMR_IMAGES),
            ("pos_resize", POS_RESIZE_RULES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {getattr(self, name)!r}")


class Segmenter:
    """Training-free open-vocabulary segmentation with an open_clip ViT.

    Args:
        model: an open_clip CLIP model (from :func:`sclip_lib.load_clip`).
        classes: class names; synonyms of one class are separated by commas (``"sofa, couch"``).
            Accepts a list or one ``;``-separated string.
        attention: a name of :func:`sclip_lib.list_attentions` (``"sclip"``, ``"vanilla"``, ...), a base name
            with modifiers (``"naclip+rcs+sfr"``: ResCLIP), or a variant object (:func:`sclip_lib.resclip`).
        background: optional names of a background class, inserted as class 0 (e.g. the stuff words
            of :data:`sclip_lib.STUFF_BACKGROUND`). ``prob_thd`` and ``area_thd`` need one.
        device: ``"cpu"``, ``"cuda"``...; default: the model's device.
        precision: ``"fp16"`` autocast or ``"fp32"``; default: fp16 on CUDA, fp32 elsewhere.
        templates: prompt templates; default open_clip's 80 ImageNet templates, as in the paper.
        **settings: fields of :class:`Settings` (``short_side``, ``logit_scale``, ``prob_thd``, ...).

    Use :meth:`predict` (one image), :meth:`predict_many` (many, sharing encoder batches) or
    :meth:`probabilities`; the pipeline's stages, one at a time, are in :attr:`stages`.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: str | Sequence[ClassSpec],
        attention: str | AttentionVariant = "sclip",
        *,
        background: ClassSpec | None = None,
        device: str | torch.device | None = None,
        precision: str | None = None,
        templates: Sequence = OPENAI_IMAGENET_TEMPLATES,
        settings: Settings | None = None,
        **overrides,
    ) -> None:
        self.settings = replace(settings or Settings(), **overrides)
        names = parse_classes(classes)
        if background is not None:
            names = parse_classes([background, *names.synonyms])
        self.classes: ClassNames = names  # class 0 is the background when there is one
        self.has_background = background is not None
        if not self.has_background and (self.settings.prob_thd > 0 or self.settings.area_thd is not None):
            raise ValueError(
                "prob_thd and area_thd send pixels to class 0, the background, but no background class was "
                "given: pass background='...' (e.g. sclip_lib.STUFF_BACKGROUND) or leave both thresholds off"
            )
        # a device the machine lacks fails here with the devices it has, not with torch's driver error
        self.device = check_device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.encoder = DenseEncoder(
            model, attention, pos_resize=self.settings.pos_resize, final_blocks=self.settings.final_blocks
        )
        _check_crop(self.settings, self.encoder.patch_size)
        self.precision = precision or ("fp16" if self.device.type == "cuda" else "fp32")
        if self.precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be 'fp16' or 'fp32', got {self.precision!r}")
        self.templates = check_templates(templates)
        self.weights = weights_info(model)
        if self.untrained:
            warnings.warn("Segmenter on UNTRAINED weights: smoke mode, its masks are not meaningful", stacklevel=2)
        self.protocol: str | None = None  # set by Benchmark.segmenter when built under a protocol
        self.stages = Stages(self)

    @property
    def attention(self) -> str:
        """The attention variant's name, modifiers included (``"naclip+rcs+sfr"``)."""
        return self.encoder.attention

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def untrained(self) -> bool:
        """True on untrained (smoke-mode) weights: the masks are then not meaningful."""
        return self.weights is not None and self.weights.untrained

    def describe(self) -> dict:
        """Every setting that shapes the output, for results files."""
        return {
            "attention": self.attention,
            "protocol": self.protocol,
            **({"attention_params": dict(self.encoder.variant.params)} if self.encoder.variant.params else {}),
            "weights": self.weights.describe() if self.weights else "unknown (model not from load_clip)",
            "untrained": self.untrained,
            "classes": [list(c) for c in self.classes.synonyms],
            "background": self.has_background,
            "precision": self.precision,
            "num_templates": len(self.templates),
            **asdict(self.settings),
        }

    @torch.no_grad()
    def predict(self, image) -> torch.Tensor:
        """Class indices ``(H, W)`` int64 at the input's size, on the CPU."""
        rgb, x = self.stages.preprocess(image)
        return self.stages.mask_from_logits(rgb, x, self.stages.merged_logits(x))

    __call__ = predict

    def predict_many(
        self,
        items: Iterable[T],
        image: Callable[[T], object] = lambda item: item,
        *,
        prefetch: int = 2,
        errors: tuple[type[BaseException], ...] = (),
    ) -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
        """``(item, predict(image(item)))`` for each item, in order, with the windows of consecutive images
        sharing encoder batches (``batch_size`` windows per call; one image rarely fills one).

        Args:
            items: images, or anything ``image(item)`` turns into one (a benchmark sample, a path you open);
                ``image(item)`` may return None to pass an item through (its mask is None).
            prefetch: threads preparing images ahead (0: in this thread).
            errors: exceptions of these types raised while checking and resizing an image (a bad image)
                are returned in place of its mask; any other stops the iteration.

        Each mask equals :meth:`predict`'s wherever a window's encoding does not depend on the other
        windows in its batch (true on CPU; tested). A mask comes out as soon as its last window is done.
        """
        return self.stages.many(items, image, prefetch=prefetch, errors=errors)

    @torch.no_grad()
    def probabilities(self, image, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Class probabilities ``(num_classes, H, W)`` at the input's size (after the synonym max,
        before ``area_thd`` and ``prob_thd``), on the CPU.

        The output itself is large: ``num_classes * H * W`` values, e.g. 1.2 GB in float32 for a
        2000x1500 image and 100 classes; ``dtype=torch.float16`` halves that. It is computed a band
        of rows at a time, so little memory is needed beyond it (:meth:`predict` needs far less).
        """
        if dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            raise TypeError(f"dtype must be a torch floating dtype (torch.float32 or torch.float16), got {dtype!r}")
        rgb, x = self.stages.preprocess(image)
        return self.stages.probabilities_from_logits(rgb, x, self.stages.merged_logits(x), dtype)

    def __repr__(self) -> str:
        return (
            f"Segmenter(attention={self.attention!r}, classes={self.num_classes}, device={self.device}, "
            f"untrained={self.untrained})"
        )


def _check_crop(settings: Settings, patch_size: tuple[int, int]) -> None:
    """A window smaller than one patch of the encoder gives no patch tokens: refuse it at construction."""
    if settings.inference == "slide" and settings.crop < max(patch_size):
        raise ValueError(
            f"crop {settings.crop} is smaller than the encoder's {patch_size[1]}x{patch_size[0]} patch, so a "
            f"window would hold no patch: use crop >= {max(patch_size)} (the paper: crop 224, stride 112)"
        )

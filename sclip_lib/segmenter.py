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
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionVariant, Prior
from .devices import check_device
from .encoder import POS_RESIZE_RULES, DenseEncoder
from .images import as_image_tensor, normalize, resize_to_fit, resized_size
from .models import weights_info
from .pamr import PAMR
from .postprocess import predict_labels, probability_map
from .text import OPENAI_IMAGENET_TEMPLATES, ClassSpec, check_templates, parse_classes, text_embeddings
from .windows import sliding_windows

__all__ = ["Segmenter", "Settings"]

_UPSAMPLE_ELEMENTS = 1 << 24  # ~64 MB of float32 window logits per interpolate call
INFERENCE_MODES = ("slide", "whole")
# What PAMR takes its affinities from. "network": the CLIP-normalised, resized network input,
# bilinearly upsampled to the original size, as the SCLIP and NACLIP code do (clip_segmentor.py
# forward_slide / naclip.py predict). "original": the original image in [0, 1] (sharper edges; this
# project's earlier behaviour, kept as an option).
PAMR_IMAGES = ("network", "original")


@dataclass(frozen=True)
class Settings:
    """Inference settings; the defaults are the paper's for most benchmarks (reference section 3)."""

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
    pamr_image: str = "network"  # see PAMR_IMAGES
    batch_size: int = 16  # windows per encoder call
    inference: str = "slide"  # "slide" windows, or "whole": one pass over the resized image
    pos_resize: str = "scale_factor"  # positional-embedding resize rule, see encoder.POS_RESIZE_RULES
    final_blocks: int = 1  # the attention variant runs in the last N blocks (see DenseEncoder); 1: the papers'
    mean: tuple[float, float, float] | None = None  # image normalisation; None: the model's own
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
            if (value is not None or name != "area_thd") and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        if not (math.isfinite(self.logit_scale) and self.logit_scale > 0):
            raise ValueError(f"logit_scale must be a finite number > 0 (the paper uses 40 to 75), got {self.logit_scale}")
        if self.stride > self.crop:
            raise ValueError(
                f"stride {self.stride} is larger than crop {self.crop}: the windows would leave image columns "
                "uncovered; use a stride <= crop (the paper: crop 224, stride 112)"
            )
        if not 0 <= self.prob_thd <= 1:
            raise ValueError(f"prob_thd must lie in [0, 1], got {self.prob_thd}")
        if self.area_thd is not None and not 0 <= self.area_thd <= 1:
            raise ValueError(f"area_thd must lie in [0, 1] or be None, got {self.area_thd}")
        for name, allowed in (("inference", INFERENCE_MODES), ("pamr_image", PAMR_IMAGES),
                              ("pos_resize", POS_RESIZE_RULES)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {getattr(self, name)!r}")


class Segmenter:
    """Training-free open-vocabulary segmentation with an open_clip ViT.

    Args:
        model: an open_clip CLIP model (from :func:`sclip_lib.load_clip`).
        classes: class names; synonyms of one class are separated by commas (``"sofa, couch"``).
            Accepts a list or one ``;``-separated string.
        attention: a name in :data:`sclip_lib.ATTENTIONS` (``"sclip"``, ``"vanilla"``, ...), a base name with
            modifiers (``"naclip+rcs+sfr"``: ResCLIP), or a variant object (:func:`sclip_lib.resclip`).
        background: optional names of a background class, inserted as class 0 (e.g. the stuff words
            of :data:`sclip_lib.STUFF_BACKGROUND`). ``prob_thd`` and ``area_thd`` need one.
        device: ``"cpu"``, ``"cuda"``...; default: the model's device.
        precision: ``"fp16"`` autocast or ``"fp32"``; default: fp16 on CUDA, fp32 elsewhere.
        templates: prompt templates; default open_clip's 80 ImageNet templates, as in the paper.
        **settings: fields of :class:`Settings` (``short_side``, ``logit_scale``, ``prob_thd``, ...).
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
            names = parse_classes([background, *names.classes])
        self.class_names = names
        self.has_background = background is not None
        if not self.has_background and (self.settings.prob_thd > 0 or self.settings.area_thd is not None):
            raise ValueError(
                "prob_thd and area_thd send pixels to class 0, the background, but no background class was "
                "given: pass background='...' (e.g. sclip_lib.STUFF_BACKGROUND) or leave both thresholds off"
            )
        # a device the machine lacks fails here with the devices it has, not with torch's driver error
        self.device = check_device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.encoder = DenseEncoder(model, attention, pos_resize=self.settings.pos_resize,
                                    final_blocks=self.settings.final_blocks)
        _check_crop(self.settings, self.encoder.patch_size)
        self.precision = precision or ("fp16" if self.device.type == "cuda" else "fp32")
        if self.precision not in ("fp16", "fp32"):
            raise ValueError(f"precision must be 'fp16' or 'fp32', got {self.precision!r}")
        self.templates = check_templates(templates)
        self.weights = weights_info(model)
        if self.untrained:
            warnings.warn("Segmenter on UNTRAINED weights: smoke mode, its masks are not meaningful", stacklevel=2)
        visual = model.visual
        self.mean = self.settings.mean or getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        self.std = self.settings.std or getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self._pamr = PAMR(self.settings.pamr_iterations, self.settings.pamr_dilations)
        # ResCLIP's first pass refines its window logits with PAMR(10, dilations=(8, 16)) whatever the
        # benchmark's own PAMR setting (clip/model.py, create_logit_temp)
        self._prior_pamr = PAMR(10, (8, 16))
        self._text: torch.Tensor | None = None
        self.protocol: str | None = None  # set by Benchmark.segmenter when built under a protocol

    # -- facts ----------------------------------------------------------------------------------
    @property
    def attention(self) -> str:
        return self.encoder.attention

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[str]:
        return self.class_names.labels

    @property
    def untrained(self) -> bool:
        return self.weights is not None and self.weights.untrained

    def describe(self) -> dict:
        """Every setting that shapes the output, for results files."""
        return {
            "attention": self.attention,
            "protocol": self.protocol,
            **({"attention_params": dict(self.encoder.variant.params)} if self.encoder.variant.params else {}),
            "weights": self.weights.describe() if self.weights else "unknown (model not from load_clip)",
            "untrained": self.untrained,
            "classes": [list(c) for c in self.class_names.classes],
            "background": self.has_background,
            "precision": self.precision,
            "num_templates": len(self.templates),
            **asdict(self.settings),
        }

    # -- stages ---------------------------------------------------------------------------------
    def text_features(self) -> torch.Tensor:
        """Normalised text embeddings ``(num_queries, dim)``, computed once (and shared per model)."""
        if self._text is None:
            with torch.no_grad(), self._autocast():
                emb = text_embeddings(self.model, self.class_names.queries, self.templates, self.device)
            self._text = F.normalize(emb.float(), dim=-1)
        return self._text

    def preprocess(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        """The checked RGB image ``(3, H, W)`` in [0, 1] and the resized, normalised ``(1, 3, h, w)`` input."""
        rgb = as_image_tensor(image)
        self.check_image_size(*rgb.shape[-2:])
        resized = resize_to_fit(rgb.to(self.device), self.settings.short_side, self.settings.long_side)
        return rgb, normalize(resized, self.mean, self.std)[None]

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The size an image of ``height x width`` is resized to before the windows."""
        return resized_size(height, width, self.settings.short_side, self.settings.long_side)

    def check_image_size(self, height: int, width: int) -> None:
        """Refuse images too thin for one patch after resizing (the encoder would fail with a conv error)."""
        h, w = self.resized_size(height, width)
        ph, pw = self.encoder.patch_size
        if h < ph or w < pw:
            s = self.settings
            need = math.ceil(max(ph, pw) * max(height, width) / s.long_side)  # short side that survives the resize
            raise ValueError(
                f"the image ({width}x{height}, width x height) is too thin: resized to fit short side "
                f"{s.short_side} and long side {s.long_side} it becomes {w}x{h}, smaller than one {pw}x{ph} "
                f"patch of the encoder. Pad or crop it to an aspect ratio of at most "
                f"{s.long_side // max(ph, pw)}:1 (for this length, at least {need} pixels on the short side), or raise long_side"
            )

    def windows(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """The windows ``(y1, y2, x1, x2)`` over a resized ``h x w`` image: sliding, or the whole image."""
        s = self.settings
        return [(0, h, 0, w)] if s.inference == "whole" else sliding_windows(h, w, s.crop, s.stride)

    @torch.no_grad()
    def window_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Merged query logits ``(num_queries, h, w)`` of the resized image ``x``, by sliding windows.

        Windows go through the encoder ``batch_size`` at a time; each window's patch logits are
        upsampled to the window, summed into the canvas and divided by the per-pixel window count.
        With ``inference="whole"`` the one window is the whole image.
        """
        s = self.settings
        h, w = x.shape[-2:]
        windows = self.windows(h, w)
        canvas = torch.zeros(len(self.text_features()), h, w, device=x.device)
        count = torch.zeros(1, h, w, device=x.device)
        for start in range(0, len(windows), s.batch_size):
            batch = windows[start : start + s.batch_size]
            crops = torch.cat([x[..., y1:y2, x1:x2] for y1, y2, x1, x2 in batch])
            add_windows(canvas, count, batch, self.crop_logits(crops))
        return canvas / count

    @torch.no_grad()
    def crop_logits(self, crops: torch.Tensor) -> torch.Tensor:
        """Patch logits ``(B, num_queries, gh, gw)`` of a batch of same-size normalised crops ``(B, 3, h, w)``."""
        with self._autocast():
            feedback = self._feedback  # only variants that refine with a first pass (ResCLIP's SFR) take one
            feats = self.encoder.dense_features(crops) if feedback is None else self.encoder.dense_features(crops, feedback)
        return torch.einsum("bchw,qc->bqhw", feats.float(), self.text_features())

    @property
    def _feedback(self):
        return self.coarse_segmentation if self.encoder.variant.needs_prior else None

    def coarse_segmentation(self, features: torch.Tensor, windows: torch.Tensor) -> Prior:
        """The prior of a first pass (for variants such as ResCLIP's SFR), for a batch of windows.

        As ResCLIP's ``create_logit_temp``: patch logits against the class names, bilinear to the window,
        PAMR with the window's pixels, softmax at ``logit_scale``; the top query per pixel and its probability.
        """
        text = self.text_features()
        chunk = _prior_chunk(windows, text.shape[0])
        labels, confidence = [], []
        with torch.autocast(windows.device.type, enabled=False):
            for feats, pixels in zip(features.float().split(chunk), windows.float().split(chunk)):
                logits = torch.einsum("bchw,qc->bqhw", feats, text)
                logits = F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
                probs = (self._prior_pamr(pixels, logits) * self.settings.logit_scale).softmax(dim=1)
                top, index = probs.max(dim=1)
                labels.append(index)
                confidence.append(top)
        return Prior(torch.cat(labels), torch.cat(confidence), self.encoder.patch_size)

    def logits(self, image) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The checked image, the network input and its merged query logits at the resized scale."""
        rgb, x = self.preprocess(image)
        return rgb, x, self.window_logits(x)

    def pamr_image(self, rgb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The ``(1, 3, H, W)`` image PAMR takes its affinities from (see :data:`PAMR_IMAGES`), given the
        checked image ``rgb`` and the network input ``x`` made from it by :meth:`preprocess`."""
        if self.settings.pamr_image == "original":
            return rgb[None].to(x.device)
        return F.interpolate(x, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def _refined(self, rgb: torch.Tensor, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Full-size logits, refined by PAMR (the only step that needs them all at once).

        Under fp16 the authors cast PAMR's output to half before the scale and softmax
        (``.to(self.dtype)`` in SCLIP's ``forward_slide``): the refined logits come back as fp16.
        """
        full = F.interpolate(logits[None], size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        refined = self._pamr(self.pamr_image(rgb, x).to(full.device), full)[0]
        return refined.half() if self._half else refined

    @property
    def _half(self) -> bool:
        """Whether the encoder runs in fp16 (autocast on CUDA)."""
        return self.precision == "fp16" and self.device.type == "cuda"

    # -- public ---------------------------------------------------------------------------------
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
        rgb, x = self.preprocess(image)
        logits = self.window_logits(x)
        if self.settings.pamr:
            logits = self._refined(rgb, x, logits)
        return probability_map(logits, tuple(rgb.shape[-2:]), self.class_names.query_to_class, self.settings.logit_scale, dtype)

    @torch.no_grad()
    def predict(self, image) -> torch.Tensor:
        """Class indices ``(H, W)`` int64 at the input's size, on the CPU."""
        return self.labels_from_logits(*self.logits(image))

    @torch.no_grad()
    def labels_from_logits(self, rgb: torch.Tensor, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The rest of :meth:`predict`: class indices ``(H, W)`` from the checked image, the network input
        made from it and its merged logits."""
        if self.settings.pamr:
            logits = self._refined(rgb, x, logits)
        s = self.settings
        labels = predict_labels(
            logits, tuple(rgb.shape[-2:]), self.class_names.query_to_class, s.logit_scale, s.prob_thd, s.area_thd
        )
        return labels.cpu()

    __call__ = predict

    def _autocast(self):
        if self.precision == "fp16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

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


_PRIOR_CHUNK_BYTES = 256 * 2**20  # the first pass's working memory for full-size window logits


def _prior_chunk(windows: torch.Tensor, num_queries: int) -> int:
    """How many windows the first pass refines together.

    On a GPU windows go through PAMR together (each of its iterations is 16 small kernels, so one call
    per window would be launch-bound), in chunks whose full-size logits and PAMR's copies of them stay
    within _PRIOR_CHUNK_BYTES. On a CPU one window at a time keeps PAMR's working set in cache (8 windows
    of 224x224, 21 classes, 2 cores: 0.18 s one by one, 0.63 s at once).
    """
    if windows.device.type == "cpu":
        return 1
    per_window = 3 * 4 * num_queries * windows.shape[-2] * windows.shape[-1]
    return max(1, _PRIOR_CHUNK_BYTES // per_window)


def add_windows(canvas: torch.Tensor, count: torch.Tensor, windows: Sequence[tuple[int, int, int, int]],
                logits: torch.Tensor) -> None:  # fmt: skip
    """Upsample each window's patch logits ``(B, Q, gh, gw)`` to its window and add them into ``canvas``
    ``(Q, h, w)``; ``count`` ``(1, h, w)`` counts the windows over each pixel. All windows share one size."""
    y1, y2, x1, x2 = windows[0]
    size = (y2 - y1, x2 - x1)
    # upsample a few windows per call: one call per batch could take GBs with many classes
    per_call = max(1, _UPSAMPLE_ELEMENTS // (logits.shape[1] * size[0] * size[1]))
    for first in range(0, len(windows), per_call):
        up = F.interpolate(logits[first : first + per_call], size=size, mode="bilinear")
        for (y1, y2, x1, x2), win in zip(windows[first : first + per_call], up):
            canvas[:, y1:y2, x1:x2] += win
            count[:, y1:y2, x1:x2] += 1

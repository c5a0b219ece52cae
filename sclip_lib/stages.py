"""The stages of :class:`~sclip_lib.Segmenter`'s pipeline, one method each: ``seg.stages``.

    rgb, x = seg.stages.preprocess(image)          # checked image; resized, normalised input
    logits = seg.stages.window_logits(x)           # merged query logits at the resized size
    mask = seg.stages.mask_from_logits(rgb, x, logits)   # == seg.predict(image)

:meth:`Segmenter.predict` is these stages in order; the book runs them one at a time to show each.
:meth:`Stages.many` is the same pipeline over many images, with the windows of consecutive images
packed into full encoder batches (one image rarely fills one: a VOC image at short side 336 has 6
windows of 224, a batch holds ``batch_size`` = 16). Its masks equal :meth:`Segmenter.predict`'s
exactly when the encoder's output for a window does not depend on the other windows in its batch
(true on CPU, tested); batches only ever mix windows of one size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import open_clip
import torch
import torch.nn.functional as F

from .attention import Prior
from .images import as_image_tensor, normalize, resize_to_fit, resized_size
from .merge import MergedLogits
from .pamr import PAMR
from .postprocess import predict_labels, probability_map
from .text import text_embeddings
from .windows import sliding_windows

if TYPE_CHECKING:
    from .segmenter import Segmenter

__all__ = ["Stages", "add_windows", "prefetched"]

T = TypeVar("T")
Window = tuple[int, int, int, int]  # (y1, y2, x1, x2) in the resized image
_UPSAMPLE_ELEMENTS = 1 << 24  # ~64 MB of float32 window logits per interpolate call
_PRIOR_CHUNK_BYTES = 256 * 2**20  # the first pass's working memory for full-size window logits


class Stages:
    """The pipeline of one :class:`Segmenter`, stage by stage (its settings, encoder and classes)."""

    def __init__(self, seg: Segmenter) -> None:
        self._seg = seg
        s = seg.settings
        visual = seg.model.visual
        self.mean = s.mean or getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        self.std = s.std or getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self._pamr = PAMR(s.pamr_iterations, s.pamr_dilations)
        # ResCLIP's first pass refines its window logits with PAMR(10, dilations=(8, 16)) whatever the
        # benchmark's own PAMR setting (clip/model.py, create_logit_temp)
        self._prior_pamr = PAMR(10, (8, 16))
        self._text: torch.Tensor | None = None

    # -- text ------------------------------------------------------------------------------------
    def text_features(self) -> torch.Tensor:
        """Normalised text embeddings ``(num_queries, dim)``, computed once (and shared per model)."""
        seg = self._seg
        if self._text is None:
            with torch.no_grad(), self.autocast():
                emb = text_embeddings(seg.model, seg.classes.queries, seg.templates, seg.device)
            self._text = F.normalize(emb.float(), dim=-1)
        return self._text

    # -- image -----------------------------------------------------------------------------------
    def preprocess(self, image) -> tuple[torch.Tensor, torch.Tensor]:
        """The checked RGB image ``(3, H, W)`` in [0, 1] and the resized, normalised ``(1, 3, h, w)`` input."""
        s = self._seg.settings
        rgb = as_image_tensor(image)
        self.check_image_size(*rgb.shape[-2:])
        resized = resize_to_fit(rgb.to(self._seg.device), s.short_side, s.long_side)
        return rgb, normalize(resized, self.mean, self.std)[None]

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The size an image of ``height x width`` is resized to before the windows."""
        s = self._seg.settings
        return resized_size(height, width, s.short_side, s.long_side)

    def check_image_size(self, height: int, width: int) -> None:
        """Refuse images too thin for one patch after resizing (the encoder would fail with a conv error)."""
        h, w = self.resized_size(height, width)
        ph, pw = self._seg.encoder.patch_size
        if h < ph or w < pw:
            s = self._seg.settings
            need = math.ceil(max(ph, pw) * max(height, width) / s.long_side)  # short side that survives the resize
            raise ValueError(
                f"the image ({width}x{height}, width x height) is too thin: resized to fit short side "
                f"{s.short_side} and long side {s.long_side} it becomes {w}x{h}, smaller than one {pw}x{ph} "
                f"patch of the encoder. Pad or crop it to an aspect ratio of at most "
                f"{s.long_side // max(ph, pw)}:1 (for this length, at least {need} pixels on the short side), or raise long_side"
            )

    # -- windows and logits ----------------------------------------------------------------------
    def windows(self, h: int, w: int) -> list[Window]:
        """The windows ``(y1, y2, x1, x2)`` over a resized ``h x w`` image: sliding, or the whole image."""
        s = self._seg.settings
        return [(0, h, 0, w)] if s.inference == "whole" else sliding_windows(h, w, s.crop, s.stride)

    @torch.no_grad()
    def window_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Merged query logits ``(num_queries, h, w)`` of the resized image ``x``, by sliding windows.

        The paper's merge written out: windows go through the encoder ``batch_size`` at a time; each
        window's patch logits are upsampled to the window, summed into the canvas and divided by the
        per-pixel window count. With ``inference="whole"`` the one window is the whole image.
        (:meth:`merged_logits` gets the same numbers, to float rounding, without the full-size canvas.)
        """
        batch_size = self._seg.settings.batch_size
        h, w = x.shape[-2:]
        windows = self.windows(h, w)
        canvas = torch.zeros(len(self.text_features()), h, w, device=x.device)
        count = torch.zeros(1, h, w, device=x.device)
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            crops = torch.cat([x[..., y1:y2, x1:x2] for y1, y2, x1, x2 in batch])
            add_windows(canvas, count, batch, self.crop_logits(crops))
        return canvas / count

    @torch.no_grad()
    def merged_logits(self, x: torch.Tensor) -> MergedLogits:
        """The windows' patch logits of the resized image ``x``, merged on demand at any size.

        The same windows and encoder batches as :meth:`window_logits`; the upsampling, the sum, the
        division by the window count and the resize to the original size become two small matrices
        per axis (:mod:`sclip_lib.merge`), so nothing is written at full resolution but the result.
        """
        image = _Image(None, None, x, self.windows(*x.shape[-2:]))
        queue = _WindowQueue(self)
        queue.extend(image)
        queue.flush()
        return image.merged

    @torch.no_grad()
    def crop_logits(self, crops: torch.Tensor) -> torch.Tensor:
        """Patch logits ``(B, num_queries, gh, gw)`` of a batch of same-size normalised crops ``(B, 3, h, w)``."""
        encoder = self._seg.encoder
        with self.autocast():
            if encoder.variant.needs_prior:  # only variants that refine with a first pass (ResCLIP's SFR)
                feats = encoder.dense_features(crops, self.coarse_segmentation)
            else:
                feats = encoder.dense_features(crops)
        return torch.einsum("bchw,qc->bqhw", feats.float(), self.text_features())

    def coarse_segmentation(self, features: torch.Tensor, windows: torch.Tensor) -> Prior:
        """The prior of a first pass (for variants such as ResCLIP's SFR), for a batch of windows.

        As ResCLIP's ``create_logit_temp``: patch logits against the class names, bilinear to the window,
        PAMR with the window's pixels, softmax at ``logit_scale``; the top query per pixel and its probability.
        """
        text = self.text_features()
        chunk = _prior_chunk(windows, text.shape[0])
        top_query, confidence = [], []
        with torch.autocast(windows.device.type, enabled=False):
            for feats, pixels in zip(features.float().split(chunk), windows.float().split(chunk)):
                logits = torch.einsum("bchw,qc->bqhw", feats, text)
                # all channels upsampled in one call: F.interpolate's rounding depends on the channel count
                logits = F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
                probs = self._prior_pamr(pixels, logits).mul_(self._seg.settings.logit_scale).softmax(dim=1)
                top, index = probs.max(dim=1)
                top_query.append(index)
                confidence.append(top)
        return Prior(torch.cat(top_query), torch.cat(confidence), self._seg.encoder.patch_size)

    # -- output ----------------------------------------------------------------------------------
    def pamr_guide(self, rgb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The ``(1, 3, H, W)`` image PAMR takes its affinities from (``Settings.pamr_image``), given the
        checked image ``rgb`` and the network input ``x`` made from it by :meth:`preprocess`."""
        if self._seg.settings.pamr_image == "original":
            return rgb[None].to(x.device)
        return F.interpolate(x, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def refined(self, rgb: torch.Tensor, x: torch.Tensor, logits: torch.Tensor | MergedLogits) -> torch.Tensor:
        """Full-size logits, refined by PAMR (the only step that needs them all at once).

        Under fp16 the authors cast PAMR's output to half before the scale and softmax
        (``.to(self.dtype)`` in SCLIP's ``forward_slide``): the refined logits come back as fp16.
        """
        size = tuple(rgb.shape[-2:])
        if isinstance(logits, MergedLogits):
            full = logits.full(size)[None]
        else:
            full = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)
        refined = self._pamr(self.pamr_guide(rgb, x).to(full.device), full)[0]
        return refined.half() if self.half else refined

    @torch.no_grad()
    def mask_from_logits(self, rgb: torch.Tensor, x: torch.Tensor, logits: torch.Tensor | MergedLogits) -> torch.Tensor:
        """The rest of :meth:`Segmenter.predict`: class indices ``(H, W)`` from the checked image, the network
        input made from it and its merged logits (:meth:`window_logits`, or :meth:`merged_logits`)."""
        s = self._seg.settings
        if s.pamr:
            logits = self.refined(rgb, x, logits)
        mask = predict_labels(
            logits, tuple(rgb.shape[-2:]), self._seg.classes.query_to_class, s.logit_scale, s.prob_thd, s.area_thd
        )
        return mask.cpu()

    @torch.no_grad()
    def probabilities_from_logits(
        self, rgb: torch.Tensor, x: torch.Tensor, logits: torch.Tensor | MergedLogits, dtype: torch.dtype
    ) -> torch.Tensor:
        """The rest of :meth:`Segmenter.probabilities`, as :meth:`mask_from_logits` is of ``predict``."""
        s = self._seg.settings
        if s.pamr:
            logits = self.refined(rgb, x, logits)
        return probability_map(logits, tuple(rgb.shape[-2:]), self._seg.classes.query_to_class, s.logit_scale, dtype)

    # -- many images -----------------------------------------------------------------------------
    def many(
        self,
        items: Iterable[T],
        image: Callable[[T], object] = lambda item: item,
        *,
        prefetch: int = 2,
        errors: tuple[type[BaseException], ...] = (),
    ) -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
        """``(item, mask)`` per item, in order; see :meth:`Segmenter.predict_many`."""
        self.text_features()  # once, before the threads start
        batch_size = self._seg.settings.batch_size

        def prepare(item: T) -> _Image | tuple[T, BaseException | None]:
            picture = image(item)
            if picture is None:
                return item, None
            try:
                rgb, x = self.preprocess(picture)
            except errors as err:
                return item, err
            return _Image(item, rgb, x, self.windows(*x.shape[-2:]))

        images: deque = deque()  # prepared, not yet returned, in input order
        queue = _WindowQueue(self)

        def finished() -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
            while images and (isinstance(images[0], tuple) or images[0].done == len(images[0].windows)):
                img = images.popleft()
                yield img if isinstance(img, tuple) else (img.item, self.mask_from_logits(img.rgb, img.x, img.merged))

        def drain() -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
            while queue:
                queue.encode_batch()
                yield from finished()
            yield from finished()

        try:
            for img in prefetched(prepare, items, prefetch):
                images.append(img)
                if isinstance(img, tuple):  # passed through, or a bad image: its place in the order is kept
                    yield from finished()
                    continue
                queue.extend(img)
                while len(queue) >= batch_size:
                    queue.encode_batch()
                    yield from finished()
        except Exception:
            # the items failed (e.g. a bad mask): the images before the failure still come out first, so a
            # caller that saves progress keeps them, as it would one image at a time
            yield from drain()
            raise
        yield from drain()

    # -- precision -------------------------------------------------------------------------------
    @property
    def half(self) -> bool:
        """Whether the encoder runs in fp16 (autocast on CUDA)."""
        return self._seg.precision == "fp16" and self._seg.device.type == "cuda"

    def autocast(self):
        """fp16 autocast on CUDA under ``precision="fp16"``; nothing otherwise."""
        return torch.autocast("cuda", dtype=torch.float16) if self.half else nullcontext()


@dataclass
class _Image:
    item: object
    rgb: torch.Tensor | None  # the checked image (3, H, W), for post-processing at the input's size
    x: torch.Tensor  # resized, normalised (1, 3, h, w)
    windows: list[Window]
    merged: MergedLogits | None = None  # made with the first window: only images in a batch hold logits
    done: int = field(default=0)  # windows already added


class _WindowQueue:
    """Windows waiting for the encoder, from one image or many: ``batch_size`` at a time, one size per
    batch, each window's logits merged into its own image's :class:`MergedLogits` in window order."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages
        self.batch_size = stages._seg.settings.batch_size
        self.queue: deque[tuple[_Image, Window]] = deque()

    def __len__(self) -> int:
        return len(self.queue)

    def extend(self, image: _Image) -> None:
        self.queue.extend((image, w) for w in image.windows)

    def flush(self) -> None:
        while self.queue:
            self.encode_batch()

    def encode_batch(self) -> None:
        queue = self.queue
        batch = [queue.popleft()]
        while queue and len(batch) < self.batch_size and _size(queue[0][1]) == _size(batch[0][1]):
            batch.append(queue.popleft())
        crops = torch.cat([img.x[..., y1:y2, x1:x2] for img, (y1, y2, x1, x2) in batch])
        logits = self.stages.crop_logits(crops)
        start = 0
        while start < len(batch):  # runs of windows from one image, added together
            img = batch[start][0]
            end = start
            while end < len(batch) and batch[end][0] is img:
                end += 1
            if img.merged is None:
                img.merged = MergedLogits(img.windows, tuple(img.x.shape[-2:]))
            img.merged.add([w for _, w in batch[start:end]], logits[start:end])
            img.done += end - start
            start = end


def _size(window: Window) -> tuple[int, int]:
    y1, y2, x1, x2 = window
    return y2 - y1, x2 - x1


def prefetched(fn: Callable, items: Iterable, workers: int, depth: int | None = None) -> Iterator:
    """``map(fn, items)`` in order, computed ``depth`` items ahead by ``workers`` threads (0: in this thread)."""
    if workers <= 0:
        yield from map(fn, items)
        return
    depth = depth or 2 * workers
    pending: deque = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="sclip-prefetch") as pool:
        try:
            try:
                for item in items:
                    pending.append(pool.submit(fn, item))
                    if len(pending) >= depth:
                        yield pending.popleft().result()
            except Exception:
                # the items themselves failed (a bad row, say): what was already taken still comes out
                # first, in order, so the caller keeps the work done before the failure
                while pending:
                    yield pending.popleft().result()
                raise
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early (error, break): don't compute what nobody will read
                future.cancel()


def _prior_chunk(windows: torch.Tensor, num_queries: int) -> int:
    """How many windows the first pass refines together.

    On a GPU windows go through PAMR together (each of its iterations is 16 small kernels, so one call
    per window would be launch-bound), in chunks whose full-size logits and PAMR's copies of them stay
    within _PRIOR_CHUNK_BYTES. On a CPU one window at a time keeps PAMR's working set in cache.
    """
    if windows.device.type == "cpu":
        return 1
    per_window = 3 * 4 * num_queries * windows.shape[-2] * windows.shape[-1]
    return max(1, _PRIOR_CHUNK_BYTES // per_window)


def add_windows(canvas: torch.Tensor, count: torch.Tensor, windows: Sequence[Window], logits: torch.Tensor) -> None:
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

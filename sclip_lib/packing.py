"""Many images, full encoder batches: windows of consecutive images packed together.

    for item, mask in predict_packed(seg, samples, lambda s: s.image):
        ...  # mask == seg.predict(item.image)

One image rarely fills a batch (a VOC image at short side 336 has 6 windows of 224, a batch holds
``batch_size`` = 16), so per-image prediction leaves the encoder, and a GPU, underused. Here the
windows of consecutive images are queued and encoded ``batch_size`` at a time; each window's logits
are merged into its own image's logits by the same code as :meth:`Segmenter.predict`, and an
image's mask comes out (in input order) as soon as its last window is done. Images are checked,
resized and normalised (:meth:`Segmenter.preprocess`) in background threads, a few ahead.

The masks equal :meth:`Segmenter.predict`'s exactly when the encoder's output for a window does not
depend on the other windows in its batch (true on CPU, tested); batches only ever mix windows of
one size.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from .benchmarks.loading import _prefetch
from .merge import MergedLogits
from .segmenter import Segmenter

__all__ = ["predict_packed"]

T = TypeVar("T")


@dataclass
class _Image:
    item: object
    rgb: torch.Tensor  # the checked image (3, H, W), for post-processing at the input's size
    x: torch.Tensor  # resized, normalised (1, 3, h, w)
    windows: list
    merged: MergedLogits | None = None  # made with the first window: only images in a batch hold logits
    done: int = field(default=0)  # windows already added


def predict_packed(
    seg: Segmenter,
    items: Iterable[T],
    image: Callable[[T], object] = lambda item: item,
    *,
    prefetch: int = 2,
    errors: tuple[type[BaseException], ...] = (),
) -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
    """``(item, seg.predict(image(item)))`` for each item, in order, with windows packed across images.

    Args:
        seg: the segmenter; its ``batch_size`` is the number of windows per encoder call.
        items: anything, e.g. benchmark samples; ``image(item)`` is what ``seg.predict`` would take, or
            None for an item to pass through untouched (its mask is None).
        prefetch: threads preparing images ahead (0: in this thread).
        errors: exceptions of these types raised while checking and resizing an image (a bad image)
            are returned in place of its mask; any other stops the iteration.
    """
    seg.text_features()  # once, before the threads start
    s = seg.settings

    def prepare(item: T) -> _Image | tuple[T, BaseException | None]:
        picture = image(item)
        if picture is None:
            return item, None
        try:
            rgb, x = seg.preprocess(picture)
        except errors as err:
            return item, err
        return _Image(item, rgb, x, seg.windows(*x.shape[-2:]))

    images: deque = deque()  # prepared, not yet returned, in input order
    queue: deque[tuple[_Image, tuple[int, int, int, int]]] = deque()  # windows not yet encoded

    def size(entry: tuple[_Image, tuple[int, int, int, int]]) -> tuple[int, int]:
        y1, y2, x1, x2 = entry[1]
        return y2 - y1, x2 - x1

    def encode_batch() -> None:
        batch = [queue.popleft()]
        while queue and len(batch) < s.batch_size and size(queue[0]) == size(batch[0]):
            batch.append(queue.popleft())
        crops = torch.cat([img.x[..., y1:y2, x1:x2] for img, (y1, y2, x1, x2) in batch])
        logits = seg.crop_logits(crops)
        start = 0
        while start < len(batch):  # runs of windows from one image, added as merged_logits adds them
            img = batch[start][0]
            end = start
            while end < len(batch) and batch[end][0] is img:
                end += 1
            if img.merged is None:
                img.merged = MergedLogits(img.windows, tuple(img.x.shape[-2:]))
            img.merged.add([w for _, w in batch[start:end]], logits[start:end])
            img.done += end - start
            start = end

    def finished() -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
        while images and (isinstance(images[0], tuple) or images[0].done == len(images[0].windows)):
            img = images.popleft()
            yield img if isinstance(img, tuple) else (img.item, seg.labels_from_logits(img.rgb, img.x, img.merged))

    def drain() -> Iterator[tuple[T, torch.Tensor | BaseException | None]]:
        while queue:
            encode_batch()
            yield from finished()
        yield from finished()

    try:
        for img in _prefetch(prepare, items, prefetch):
            images.append(img)
            if isinstance(img, tuple):  # passed through, or a bad image: its place in the order is kept
                yield from finished()
                continue
            queue.extend((img, w) for w in img.windows)
            while len(queue) >= s.batch_size:
                encode_batch()
                yield from finished()
    except Exception:
        # the items failed (e.g. a bad mask): the images before the failure still come out first, so a
        # caller that saves progress keeps them, as it would without packing
        yield from drain()
        raise
    yield from drain()

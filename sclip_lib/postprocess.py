"""From merged query logits to class probabilities and a label map (reference steps 5 and 7-10).

Working at the original image size, the full ``(queries, H, W)`` float tensor can be many GB for a
large photo and many classes. ``predict_labels`` therefore upsamples and scores a band of rows at a
time, and keeps only the label and its probability per pixel.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .merge import MergedLogits

__all__ = ["upsample_rows", "class_probabilities", "probability_map", "predict_labels", "bilinear_weights"]

# ~8 MB of float32 per band of rows: a band's scores stay in the CPU's last-level cache between the passes
# over them (product, softmax, max), where larger bands go back to memory for each pass
_BAND_ELEMENTS = 1 << 21


def bilinear_weights(size_in: int, size_out: int, device=None):
    """Source indices and weights of PyTorch's bilinear resize (``align_corners=False``) on one axis."""
    scale = size_in / size_out
    src = ((torch.arange(size_out, device=device, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=size_in - 1)
    i1 = (i0 + 1).clamp(max=size_in - 1)
    w1 = (src - i0).float()
    return i0, i1, w1


def upsample_rows(logits: torch.Tensor, size: tuple[int, int], rows: slice | None = None) -> torch.Tensor:
    """Bilinear upsampling of ``(C, h, w)`` to ``size``, only for output ``rows``.

    Equal (to float rounding) to ``F.interpolate(logits[None], size, mode="bilinear")[0][:, rows]``,
    but never allocates the full output: the rows are blended by hand from their two source rows,
    then PyTorch resizes the band along columns only (a row scale of 1 copies rows unchanged).
    """
    (H, W), h = size, logits.shape[-2]
    if rows is None or (rows.start in (0, None) and rows.stop >= H):
        return F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    y0, y1, wy = bilinear_weights(h, H, logits.device)
    y0, y1, wy = y0[rows], y1[rows], wy[rows].to(logits.dtype)[:, None]
    band = logits[:, y0] * (1 - wy) + logits[:, y1] * wy  # (C, rows, w)
    return F.interpolate(band[None], size=(band.shape[1], W), mode="bilinear", align_corners=False)[0]


def class_probabilities(logits: torch.Tensor, query_to_class: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Softmax over all queries of ``logit_scale * logits``, then each class takes its synonyms' max.

    ``logits`` is ``(num_queries, ...)``; the result is ``(num_classes, ...)``, float32. fp16 logits
    are scaled and softmaxed in fp16, as the authors' code does with PAMR's fp16 output.
    """
    if logits.dtype == torch.float16:
        probs = (logits * logit_scale).softmax(dim=0).float()
    else:
        probs = (logits.float() * logit_scale).softmax(dim=0)
    num_classes = int(query_to_class.max()) + 1
    if num_classes == probs.shape[0]:
        return probs
    q2c = query_to_class.cpu()
    if bool((q2c[1:] >= q2c[:-1]).all()):  # each class's names are contiguous (as ClassNames makes them)
        counts = torch.unique_consecutive(q2c, return_counts=True)[1].tolist()
        return torch.stack([group.amax(dim=0) for group in probs.split(counts)])
    index = q2c.to(probs.device).view(-1, *([1] * (probs.ndim - 1))).expand_as(probs)
    out = probs.new_zeros((num_classes, *probs.shape[1:]))
    return out.scatter_reduce_(0, index, probs, reduce="amax", include_self=False)


def _bands(height: int, per_row: int) -> Iterator[slice]:
    step = max(1, _BAND_ELEMENTS // max(per_row, 1))
    for start in range(0, height, step):
        yield slice(start, min(start + step, height))


Logits = torch.Tensor | MergedLogits  # query logits (Q, h, w) at any size, or windows merged on demand


def _num_queries(logits: Logits) -> int:
    return logits.num_queries if isinstance(logits, MergedLogits) else logits.shape[0]


def _device(logits: Logits) -> torch.device:
    return logits.grid.device if isinstance(logits, MergedLogits) else logits.device


def _band_logits(logits: Logits, size: tuple[int, int], rows: slice) -> torch.Tensor:
    """Query logits ``(Q, rows, W)`` of output ``rows`` at ``size`` (logits already at ``size`` are sliced)."""
    if isinstance(logits, MergedLogits):
        return logits.band(size, rows)
    return logits[:, rows] if logits.shape[-2:] == size else upsample_rows(logits, size, rows)


def _band_probabilities(logits: Logits, size, rows: slice, query_to_class, logit_scale) -> torch.Tensor:
    """Class probabilities of output ``rows`` at ``size``."""
    return class_probabilities(_band_logits(logits, size, rows), query_to_class, logit_scale)


@torch.no_grad()
def probability_map(
    logits: torch.Tensor,
    size: tuple[int, int],
    query_to_class: torch.Tensor,
    logit_scale: float,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Class probabilities ``(num_classes, H, W)`` of ``dtype`` on the CPU from query logits ``(Q, h, w)``.

    Scored a band of rows at a time, like :func:`predict_labels`: only the output is held in full.
    """
    num_classes = int(query_to_class.max()) + 1
    out = torch.empty((num_classes, *size), dtype=dtype)
    for rows in _bands(size[0], _num_queries(logits) * size[1]):
        out[:, rows] = _band_probabilities(logits, size, rows, query_to_class, logit_scale).to("cpu", dtype)
    return out


@torch.no_grad()
def predict_labels(
    logits: Logits,
    size: tuple[int, int],
    query_to_class: torch.Tensor,
    logit_scale: float,
    prob_thd: float = 0.0,
    area_thd: float | None = None,
) -> torch.Tensor:
    """Label map ``(H, W)`` int64 from query logits ``(Q, h, w)`` (any h, w; upsampled here to ``size``)
    or windows merged on demand (:class:`~sclip_lib.merge.MergedLogits`).

    Steps in the reference's order: upsample, scale and softmax over queries, synonym max, argmax;
    if ``area_thd``: zero the scores of foreground classes (1..) whose predicted area is below
    ``area_thd`` times the whole predicted foreground, argmax again; pixels whose top probability is
    below ``prob_thd`` become class 0 (background).

    Without thresholds only the argmax is needed, and it is taken on the float32 logits themselves: the
    scale, the softmax and the synonym max keep the order of the queries (each class's names are
    contiguous and in class order, so a tie goes to the same lower class), and only the label is kept.
    With thresholds the top probability and its class are read from the top query's (the synonym max
    never needs to be written out).
    """
    H, W = size
    num_classes = int(query_to_class.max()) + 1
    bands = list(_bands(H, _num_queries(logits) * W))
    device = _device(logits)
    if prob_thd <= 0 and area_thd is None and _argmax_keeps_order(logits, query_to_class):
        labels = torch.empty(size, dtype=torch.long, device=device)
        q2c = query_to_class.to(device)
        for rows in bands:
            labels[rows] = q2c[_band_logits(logits, size, rows).argmax(dim=0)]
        return labels

    in_order = bool((query_to_class[1:] >= query_to_class[:-1]).all())  # each class's names contiguous
    # the top class and its probability come from the top query: a class's probability is the max of
    # its names', and with the names in class order the first top query is the first top class
    q2c = query_to_class.to(device) if in_order else torch.arange(num_classes, device=device)

    def score(rows: slice) -> torch.Tensor:
        if in_order:
            return _query_probabilities(logits, size, rows, logit_scale)
        return _band_probabilities(logits, size, rows, query_to_class, logit_scale)

    # a small image is scored once and reused by the area_thd pass; a large one is scored again, band by band
    whole = score(bands[0]) if len(bands) == 1 else None

    def scored(keep: torch.Tensor | None = None):
        for rows in bands:
            probs = whole if whole is not None else score(rows)
            if keep is not None:
                probs *= keep[q2c][:, None, None]  # in place: this is the last use of these scores
            p, index = probs.max(dim=0)
            yield rows, (p, q2c[index])

    labels = torch.empty(size, dtype=torch.long, device=device)
    top = torch.empty(size, dtype=torch.float32, device=device)
    for rows, (p, best) in scored():
        top[rows], labels[rows] = p, best
    if area_thd is not None:
        area = torch.bincount(labels.flatten(), minlength=num_classes)[1:].float()
        keep = torch.cat([torch.ones(1, device=area.device), (area > area_thd * area.sum()).float()])
        if not bool(keep[1:][area > 0].all()):  # some predicted class is too small: score again without it
            for rows, (p, best) in scored(keep):
                top[rows], labels[rows] = p, best
    if prob_thd > 0:
        labels[top < prob_thd] = 0
    return labels


def _query_probabilities(logits: Logits, size: tuple[int, int], rows: slice, logit_scale: float) -> torch.Tensor:
    """Softmax over the queries ``(Q, rows, W)`` of ``logit_scale`` times the logits, float32 (as
    :func:`class_probabilities`, before the synonym max); merged windows take the scale in their matrices."""
    if isinstance(logits, MergedLogits):
        return logits.band(size, rows, logit_scale).softmax(dim=0)
    band = _band_logits(logits, size, rows)
    if band.dtype == torch.float16:
        return (band * logit_scale).softmax(dim=0).float()
    return (band.float() * logit_scale).softmax(dim=0)


def _argmax_keeps_order(logits: Logits, query_to_class: torch.Tensor) -> bool:
    """Whether the argmax of the logits is the argmax of the class probabilities (up to float ties):
    float32 logits (fp16 ones are softmaxed in fp16, where rounding makes ties) and synonyms contiguous."""
    dtype = logits.grid.dtype if isinstance(logits, MergedLogits) else logits.dtype
    q2c = query_to_class.cpu()
    return dtype == torch.float32 and bool((q2c[1:] >= q2c[:-1]).all())

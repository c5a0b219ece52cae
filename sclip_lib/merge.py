"""Window logits merged and resized as two small matrices per axis, never as a canvas of upsampled windows.

The pipeline's steps 3-5 (reference section 2: each window's patch logits bilinearly upsampled to the
window, summed into a canvas, divided by the number of windows over each pixel, the canvas bilinearly
upsampled to the original size) are all linear, and each acts on rows and columns separately. Sliding
windows are every pairing of a row span with a column span, so the count of windows over pixel (y, x) is
(row spans over y) x (column spans over x), and for each query the whole chain is

    logits at the original size = rows @ grid @ cols.T

where ``grid`` holds the windows' patch logits side by side at their own resolution (``n_row_spans * gh``
by ``n_col_spans * gw``), and ``rows`` / ``cols`` are the per-axis products of PyTorch's own bilinear
weights, the placement of the spans, the division by the count and the final resize. Only the output is
written at full resolution, once. The result equals the canvas computation up to float rounding (the same
terms summed in another order; tested against a copy of the canvas code in ``tests/test_speed_paths.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["MergedLogits", "bilinear_matrix", "is_window_grid"]

Window = tuple[int, int, int, int]


def bilinear_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """``(size_out, size_in)`` float64: PyTorch's bilinear resize (``align_corners=False``) along one axis.

    Read from ``F.interpolate`` itself on the unit vectors (float32, as the logits), so the weights are
    exactly the ones it uses, border clamping included.
    """
    eye = torch.eye(size_in, dtype=torch.float32)[None, :, :, None]  # channel i: unit vector i along the height
    return F.interpolate(eye, size=(size_out, 1), mode="bilinear", align_corners=False)[0, :, :, 0].T.double()


def _spans(windows: Sequence[Window]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    rows = sorted({(y1, y2) for y1, y2, _, _ in windows})
    cols = sorted({(x1, x2) for _, _, x1, x2 in windows})
    return rows, cols


def is_window_grid(windows: Sequence[Window]) -> bool:
    """Whether ``windows`` are every pairing of their row spans with their column spans, each once."""
    rows, cols = _spans(windows)
    return len(set(windows)) == len(windows) == len(rows) * len(cols)


def _axis_matrix(spans: list[tuple[int, int]], cells: int, length: int, out: int) -> torch.Tensor:
    """``(out, len(spans) * cells)``: one axis of the chain, from the spans' patch cells to ``out`` pixels."""
    span = spans[0][1] - spans[0][0]
    up = bilinear_matrix(cells, span)  # a window's patches to its pixels
    matrix = torch.zeros(length, len(spans) * cells, dtype=torch.float64)
    count = torch.zeros(length, 1, dtype=torch.float64)
    for i, (start, stop) in enumerate(spans):
        matrix[start:stop, i * cells : (i + 1) * cells] += up
        count[start:stop] += 1
    matrix /= count
    return matrix if out == length else bilinear_matrix(length, out) @ matrix


class MergedLogits:
    """The windows' patch logits of one image, merged into query logits at any size on demand.

    Build it with the windows over the resized ``size`` (``(h, w)``), :meth:`add` each batch of window logits
    ``(B, Q, gh, gw)`` as it comes from the encoder, then read :meth:`resized` (what the canvas of
    :meth:`Segmenter.window_logits` holds), :meth:`full` or :meth:`band` (rows of the logits at an output size).
    """

    def __init__(self, windows: Sequence[Window], size: tuple[int, int]) -> None:
        if not windows or not is_window_grid(windows):
            raise ValueError("MergedLogits needs sliding windows: each row span paired once with each column span")
        self.windows = list(windows)
        self.size = tuple(size)
        self.row_spans, self.col_spans = _spans(windows)
        self._place = {w: (self.row_spans.index(w[:2]), self.col_spans.index(w[2:])) for w in windows}
        self.grid: torch.Tensor | None = None  # (Q, rows * gh, cols * gw), allocated with the first window
        self.added = 0
        self._cols: dict[int, torch.Tensor] = {}  # output width -> grid @ cols.T, (Q, rows * gh, width)
        self._rows: dict[int, torch.Tensor] = {}

    def add(self, windows: Sequence[Window], logits: torch.Tensor) -> None:
        """Place the patch logits ``(B, Q, gh, gw)`` of ``windows`` (all of one size) in the grid."""
        gh, gw = logits.shape[-2:]
        if self.grid is None:
            shape = (logits.shape[1], len(self.row_spans) * gh, len(self.col_spans) * gw)
            self.grid = logits.new_zeros(shape)
        for window, patch in zip(windows, logits):
            r, c = self._place[window]
            self.grid[:, r * gh : (r + 1) * gh, c * gw : (c + 1) * gw] = patch
        self.added += len(windows)
        self._cols.clear()

    @property
    def num_queries(self) -> int:
        return self.grid.shape[0]

    def _matrices(self, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.added != len(self.windows):
            raise RuntimeError(f"{self.added} of {len(self.windows)} windows were added; add them all first")
        grid = self.grid
        gh, gw = grid.shape[1] // len(self.row_spans), grid.shape[2] // len(self.col_spans)
        if size[0] not in self._rows:
            self._rows[size[0]] = _axis_matrix(self.row_spans, gh, self.size[0], size[0]).to(grid)
        if size[1] not in self._cols:
            cols = _axis_matrix(self.col_spans, gw, self.size[1], size[1]).to(grid)
            self._cols[size[1]] = grid @ cols.T  # (Q, rows * gh, width): the small product first
        return self._rows[size[0]], self._cols[size[1]]

    def band(self, size: tuple[int, int], rows: slice, scale: float = 1.0) -> torch.Tensor:
        """Query logits ``(Q, len(rows), W)`` of output ``rows`` at ``size`` ``(H, W)``, times ``scale``
        (taken in the small row matrix: no pass over the band)."""
        matrix, right = self._matrices(size)
        matrix = matrix[rows] if scale == 1 else matrix[rows] * scale
        # a band of rows reads only the grid rows of the windows over it: the others' weights are 0
        used = (matrix != 0).any(dim=0).nonzero()
        first, last = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
        return torch.matmul(matrix[:, first:last], right[:, first:last])

    def full(self, size: tuple[int, int]) -> torch.Tensor:
        """Query logits ``(Q, H, W)`` at ``size``."""
        return self.band(size, slice(0, size[0]))

    def resized(self) -> torch.Tensor:
        """Merged query logits ``(Q, h, w)`` at the resized scale: the canvas divided by the window count."""
        return self.full(self.size)

"""``load_benchmark``: a benchmark's (image, converted mask) samples from the hub or a local folder.

Sources, one code path each:

- the hub (default): ``datasets.load_dataset(repo, revision=..., data_files={split: pattern}, split=...,
  streaming=True)``;
- a local copy in the hub repo's own layout (its parquet files): the same ``load_dataset`` call on the
  folder, with the repo's ``data_files`` pattern;
- the benchmark's original folder layout (``layouts.py``).

Subset rule: ``limit=N`` keeps the FIRST N rows of the split in its stored order (the repo's parquet
files in name order, rows in file order; for original layouts the split file's order, else sorted file
names). Streaming makes this cheap, and the same N images come back every time.

Images and masks are decoded and converted in worker threads while the caller works on the previous
sample (PIL decoding releases the GIL), so the model is not kept waiting on the files.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..images import upright
from ..stages import prefetched
from .layouts import LayoutError, find_pairs
from .registry import Benchmark, HubSource, get_benchmark

__all__ = ["load_benchmark", "BenchmarkData", "Sample", "BadSample", "BenchmarkSourceError", "SAMPLE_ERRORS"]

CHECK_ROWS = 2  # rows decoded and checked when a source is opened, to fail before any model work


class BenchmarkSourceError(RuntimeError):
    """A benchmark's data could not be opened or does not hold what the benchmark expects."""


@dataclass
class Sample:
    """One evaluation pair: the RGB image and its mask already converted to scored class indices."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8 class indices, 255 = ignore


@dataclass
class BadSample:
    """A row that could not be read or converted (``samples(skip_bad=True)``), and why."""

    name: str
    error: str


# what one damaged or out-of-range sample raises (a whole source that is wrong fails in check())
SAMPLE_ERRORS = (ValueError, OSError, Image.DecompressionBombError, BenchmarkSourceError)


class BenchmarkData:
    """The samples of one benchmark from one source. Iterate it (or :meth:`samples`) to get :class:`Sample`.

    ``len()`` is the number of samples when known (local sources, or ``limit`` given), else the
    benchmark's full split size.
    """

    def __init__(
        self,
        benchmark: Benchmark,
        rows: Callable[[], Iterable[tuple[str, object, object]]],
        *,
        limit: int | None,
        size: int | None,
        source: dict,
        workers: int = 2,
    ) -> None:
        self.benchmark = benchmark
        self._rows = rows
        self.limit = limit
        self._size = size
        self.source = source
        self.workers = workers

    def __len__(self) -> int:
        size = self._size if self._size is not None else self.benchmark.num_images
        return min(size, self.limit) if self.limit is not None else size

    def describe(self) -> dict:
        """Where the samples come from and which subset, for results files."""
        return {
            **self.source,
            "limit": self.limit,
            "subset": "first N rows of the split in stored order" if self.limit is not None else "full split",
        }

    def rows(self) -> Iterator[tuple[str, object, object]]:
        """Undecoded ``(name, image, mask)`` rows, the subset applied."""
        return itertools.islice(self._rows(), self.limit)

    def decode(self, row: tuple[str, object, object]) -> Sample:
        """Decode one row and convert its mask; raises ``ValueError`` on bad sizes or mask values."""
        name, image, mask = row
        # upright: photos are scored as viewers show them (EXIF orientation), masks likewise if tagged
        rgb = np.asarray(upright(_open(image, name)).convert("RGB"))
        raw = _mask_array(upright(_open(mask, name)), f"{self.benchmark.name} {name}")
        if raw.shape != rgb.shape[:2]:
            raise ValueError(
                f"{self.benchmark.name} {name}: image {rgb.shape[1]}x{rgb.shape[0]} and mask "
                f"{raw.shape[1]}x{raw.shape[0]} (width x height) differ in size; the ground truth is scored "
                "at the image's own size, so they must match"
            )
        return Sample(name, rgb, self.benchmark.label_map(raw, where=f"{self.benchmark.name} {name}"))

    def samples(self, workers: int | None = None, *, start: int = 0, skip_bad: bool = False) -> Iterator[Sample]:
        """Decoded samples in order; ``workers`` threads decode ahead (0: decode in the caller's thread).

        ``start`` skips that many rows undecoded (resuming). With ``skip_bad`` a row that cannot be
        read or converted comes back as a :class:`BadSample` instead of ending the iteration.
        """
        workers = self.workers if workers is None else workers
        rows = itertools.islice(self.rows(), start, None)
        return prefetched(self._decode_or_bad if skip_bad else self.decode, rows, workers)

    def _decode_or_bad(self, row: tuple[str, object, object]) -> Sample | BadSample:
        try:
            return self.decode(row)
        except SAMPLE_ERRORS as err:
            return BadSample(str(row[0]), f"{type(err).__name__}: {err}")

    __iter__ = samples

    def check(self, rows: int = CHECK_ROWS, *, skip_bad: bool = False) -> None:
        """Decode the first rows: fail now, clearly, if the source is empty or holds the wrong masks.

        With ``skip_bad`` a bad row among them is left to the run, which skips it like any other."""
        first = list(itertools.islice(self.rows(), rows))
        if not first:
            raise BenchmarkSourceError(f"{self.benchmark.name}: the source {self.source} holds no images")
        for row in first:
            (self._decode_or_bad if skip_bad else self.decode)(row)

    def __repr__(self) -> str:
        return f"BenchmarkData({self.benchmark.name!r}, images={len(self)}, source={self.source})"


def load_benchmark(
    name: str | Benchmark,
    limit: int | None = None,
    source: str | os.PathLike | None = None,
    *,
    workers: int = 2,
    check: bool = True,
) -> BenchmarkData:
    """The samples of benchmark ``name``: streamed from the hub, or from the local folder ``source``.

    Args:
        name: a key of :data:`BENCHMARKS` (``"voc21"``, ``"ade20k"``, ...) or a :class:`Benchmark`.
        limit: keep the first ``limit`` rows of the split in stored order (the same images every time).
        source: a local folder: a copy in the hub repo's layout (its parquet files), or the benchmark's
            original layout (e.g. ``VOC2012/`` with ``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/``).
        workers: threads decoding ahead of the consumer (0 decodes in the caller's thread).
        check: decode the first rows now, so a wrong or empty source fails before any model work.
    """
    bench = get_benchmark(name)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer (or None for the whole split), got {limit!r}")
    if source is None:
        if bench.hub is None:
            raise BenchmarkSourceError(
                f"{bench.name} has no usable copy on the Hugging Face hub: download the dataset and pass "
                f"load_benchmark({bench.name!r}, source='/path/to/folder') in the layout "
                f"{_layout_words(bench)}"
            )
        data = _hub_data(bench, limit, workers)
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise BenchmarkSourceError(f"{bench.name}: source {folder} is not a folder")
        if bench.hub is not None and any(folder.rglob("*.parquet")):
            data = _hub_data(bench, limit, workers, folder)
        else:
            data = _layout_data(bench, limit, workers, folder)
    if check:
        data.check()
    return data


def _layout_words(bench: Benchmark) -> str:
    from .layouts import LAYOUTS

    return LAYOUTS[bench.layout][1]


def _hub_data(bench: Benchmark, limit: int | None, workers: int, folder: Path | None = None) -> BenchmarkData:
    hub = bench.hub
    dataset = _open_dataset(bench, hub, folder)
    columns = dataset.column_names
    if columns is not None and not {hub.image_column, hub.mask_column} <= set(columns):
        raise BenchmarkSourceError(
            f"{bench.name}: {folder or hub.repo} has columns {columns}, expected {hub.image_column!r} "
            f"(image) and {hub.mask_column!r} (mask)"
        )
    dataset = _undecoded(dataset.select_columns([hub.image_column, hub.mask_column]), hub)

    def rows() -> Iterator[tuple[str, object, object]]:
        for i, row in enumerate(dataset):
            if hub.image_column not in row or hub.mask_column not in row:
                raise BenchmarkSourceError(
                    f"{bench.name}: rows of {folder or hub.repo} have columns {sorted(row)}, expected "
                    f"{hub.image_column!r} (image) and {hub.mask_column!r} (mask)"
                )
            image = row[hub.image_column]
            path = image.get("path") if isinstance(image, dict) else None
            yield (path or f"row {i}"), image, row[hub.mask_column]

    if folder is None:
        where = {"kind": "hub", **hub.describe()}
        size = None
    else:
        where = {"kind": "local copy in the hub layout", "path": str(folder), "repo": hub.repo}
        size = _parquet_rows(folder, hub)
    return BenchmarkData(bench, rows, limit=limit, size=size, source=where, workers=workers)


def _datasets():
    """Hugging Face ``datasets`` (the ``[eval]`` extra), or an error that says how to install it."""
    try:
        import datasets
    except ImportError:
        raise BenchmarkSourceError(
            "loading a benchmark needs Hugging Face datasets, which is not installed: pip install 'sclip_lib[eval]'"
        ) from None
    return datasets


def _open_dataset(bench: Benchmark, hub: HubSource, folder: Path | None):
    datasets = _datasets()

    try:
        if folder is None:
            # The split's own files, named as in the local case: at refs/convert/parquet the repo is plain
            # parquet folders with no config metadata (name= has nothing to select, and the inferred split
            # patterns take every config's files and rename 'val' to 'validation').
            return datasets.load_dataset(
                hub.repo,
                revision=hub.revision,
                data_files={hub.split: hub.data_files},
                split=hub.split,
                streaming=True,
            )
        if not list(folder.glob(hub.data_files)):
            raise BenchmarkSourceError(
                f"{bench.name}: {folder} holds parquet files but none matching {hub.data_files!r}, the layout "
                f"of {hub.repo}; keep the repo's own file layout"
            )
        return datasets.load_dataset(
            str(folder), data_files={hub.split: hub.data_files}, split=hub.split, streaming=True
        )
    except BenchmarkSourceError:
        raise
    except Exception as e:  # offline, unreachable, repo moved, gated...: say what to do instead
        where = f"the local copy {folder}" if folder else f"the Hugging Face dataset {hub.repo!r}"
        raise BenchmarkSourceError(
            f"could not load {bench.name} from {where} "
            f"(revision={hub.revision or 'main'}, split={hub.split!r}): {type(e).__name__}: {e}\n"
            f"To use a local copy, pass load_benchmark({bench.name!r}, source='/path/to/local/copy') "
            f"(or `sclip evaluate --benchmark {bench.name} --source /path/to/local/copy`): either the "
            f"repo's parquet files in its layout ({hub.data_files}) or the original layout, "
            f"{_layout_words(bench)}"
        ) from e


def _undecoded(dataset, hub: HubSource):
    """Ask ``datasets`` for the encoded bytes of image columns: decoding happens in our worker threads."""
    datasets = _datasets()

    features = dataset.features or {}
    for column in (hub.image_column, hub.mask_column):
        if isinstance(features.get(column), datasets.Image):
            dataset = dataset.cast_column(column, datasets.Image(decode=False))
    return dataset


def _parquet_rows(folder: Path, hub: HubSource) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob(hub.data_files))


def _layout_data(bench: Benchmark, limit: int | None, workers: int, folder: Path) -> BenchmarkData:
    try:
        pairs = find_pairs(folder, bench.layout)
    except LayoutError as e:
        hint = f" or a copy of {bench.hub.repo} in its parquet layout ({bench.hub.data_files})" if bench.hub else ""
        raise BenchmarkSourceError(f"{bench.name}: {e}{hint}") from None

    def rows() -> Iterator[tuple[str, object, object]]:
        return ((p.name, p.image, p.mask) for p in pairs)

    where = {"kind": f"local folder ({bench.layout} layout)", "path": str(folder)}
    return BenchmarkData(bench, rows, limit=limit, size=len(pairs), source=where, workers=workers)


def _open(value, name: str) -> Image.Image:
    """A PIL image from what a source holds: a path, ``{"bytes", "path"}``, raw bytes or a PIL image."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    if isinstance(value, (str, os.PathLike)):
        return Image.open(value)
    raise BenchmarkSourceError(f"{name}: cannot read an image from a {type(value).__name__}")


def _mask_array(mask: Image.Image, where: str) -> np.ndarray:
    """The class values of a mask image: palette indices, not colours, for 'P' images."""
    if mask.mode in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(mask)
    if mask.mode in ("RGB", "RGBA"):
        arr = np.asarray(mask)[..., :3]
        if (arr == arr[..., :1]).all():  # a grey mask stored as RGB
            return np.ascontiguousarray(arr[..., 0])
    raise ValueError(
        f"{where}: the mask is a {mask.mode} colour image; expected class indices (a palette 'P' or grey "
        "'L' PNG). Convert colour masks to indices with the dataset's palette first"
    )

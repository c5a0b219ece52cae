"""``evaluate``: run a :class:`Segmenter` over a benchmark and report mIoU as the paper's tables do.

    result = sl.evaluate("sclip", "voc21", model=model, limit=100, out="results/")
    result.miou, result.per_class(), result.seconds_per_image

mIoU is accumulated over the whole (sub)set at the ground truth's own resolution (:class:`MeanIoU`).
Results files (JSON, plus a per-class CSV) are written atomically: a temporary file in the same
folder, then ``os.replace``, so an interrupted or failed run leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .benchmarks import PAPER_ORDER, Benchmark, BenchmarkData, get_benchmark, load_benchmark
from .metrics import MeanIoU
from .segmenter import Segmenter

__all__ = ["evaluate", "EvalResult", "SMOKE_WARNING", "summary_rows", "format_table", "write_summary", "write_atomic"]

SMOKE_WARNING = "SMOKE RUN: untrained random weights; these numbers say nothing about the method"


@dataclass
class EvalResult:
    """The outcome of one evaluation; ``to_json``/``load`` round-trip it (NaN IoU is stored as null)."""

    benchmark: str
    title: str
    miou: float  # percent
    iou: list[float]  # per class, percent, NaN where undefined
    class_names: list[str]
    num_images: int
    num_pixels: int
    seconds_per_image: float  # wall time of the image loop per image (text embeddings excluded)
    text_seconds: float  # encoding the class names, once
    total_seconds: float
    settings: dict  # Segmenter.describe(): attention, weights, thresholds, ...
    data: dict  # source and subset
    paper_miou: float  # SCLIP as published (reference section 5)
    released_miou: float  # SCLIP with the authors' released code
    untrained: bool
    model: str = "unknown"  # e.g. ViT-B-16-openai, ViT-B-16-untrained
    warning: str | None = None
    device: str = "cpu"
    created: str = ""
    versions: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.iou)

    @property
    def images_per_second(self) -> float:
        return 1.0 / self.seconds_per_image if self.seconds_per_image > 0 else float("inf")

    @property
    def attention(self) -> str:
        return self.settings.get("attention", "?")

    def per_class(self) -> dict[str, float]:
        return dict(zip(self.class_names, self.iou))

    def stem(self) -> str:
        """A file name stem that tells runs apart: benchmark, attention, model, PAMR, subset."""
        parts = [self.benchmark, self.attention, self.model]
        if self.settings.get("pamr"):
            parts.append("pamr")
        if self.data.get("limit") is not None:
            parts.append(f"limit{self.data['limit']}")
        return "_".join(p.replace("/", "-").replace(" ", "") for p in parts)

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["iou"] = [None if math.isnan(v) else v for v in self.iou]
        d["miou"] = None if math.isnan(self.miou) else self.miou
        d["num_classes"] = self.num_classes
        d["images_per_second"] = self.images_per_second
        return d

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the per-class IoU table (class index, name, IoU percent) as CSV, atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["class", "name", "iou"])
        for i, (name, v) in enumerate(zip(self.class_names, self.iou)):
            writer.writerow([i, name, "" if math.isnan(v) else f"{v:.4f}"])
        return write_atomic(path, buf.getvalue())

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``<stem>.json`` and ``<stem>.csv`` into ``folder``; returns the JSON path."""
        folder = Path(folder)
        self.to_csv(folder / f"{self.stem()}.csv")
        return self.to_json(folder / f"{self.stem()}.json")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvalResult":
        """Read a result written by :meth:`to_json`."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        if missing - {"model", "warning", "device", "created", "versions"}:
            raise ValueError(f"{path} is not an evaluation result: missing {sorted(missing)}")
        d = {k: v for k, v in d.items() if k in names}
        d["iou"] = [float("nan") if v is None else float(v) for v in d["iou"]]
        d["miou"] = float("nan") if d["miou"] is None else float(d["miou"])
        return cls(**d)


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def evaluate(
    segmenter_or_method: Segmenter | str,
    benchmark: str | Benchmark | BenchmarkData,
    *,
    model: torch.nn.Module | None = None,
    limit: int | None = None,
    source: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    out: str | os.PathLike | None = None,
    workers: int = 2,
    progress: bool = True,
    **overrides,
) -> EvalResult:
    """Evaluate a segmenter on a benchmark; returns an :class:`EvalResult`, saved to ``out`` if given.

    Args:
        segmenter_or_method: a :class:`Segmenter` built for this benchmark's classes, or an attention
            name (``"sclip"``, ``"vanilla"``, ...) together with ``model=``: the segmenter is then built
            with the benchmark's classes, background and settings (:meth:`Benchmark.segmenter`).
        benchmark: a benchmark name, a :class:`Benchmark`, or samples from :func:`load_benchmark`.
        model: the open_clip model, when a method name is given.
        limit: the first ``limit`` images of the split (the same every time); ``source``: a local copy.
        device: where the segmenter runs (method name only; fp16 autocast on CUDA, as the authors ran).
        out: a results folder: ``<benchmark>_<attention>_<model>[...].json`` and ``.csv`` are written there.
        workers: threads decoding images while the model runs (0: none).
        progress: show a tqdm progress bar (a widget in notebooks, text in terminals).
        **overrides: for a method name, passed to the Segmenter (``templates=``, ``pamr=True``, ...).
    """
    data = benchmark if isinstance(benchmark, BenchmarkData) else None
    bench = data.benchmark if data is not None else get_benchmark(benchmark)
    seg = _segmenter(segmenter_or_method, bench, model, device, overrides)
    if data is None:
        data = load_benchmark(bench, limit=limit, source=source, workers=workers)
    elif limit is not None or source is not None:
        raise ValueError("limit and source belong to load_benchmark when samples are passed in; pass them there")

    start = time.perf_counter()
    seg.text_features()  # once, outside the per-image timing
    text_seconds = time.perf_counter() - start
    metric = MeanIoU(bench.num_classes, class_names=bench.labels_list)
    count = 0
    loop_start = time.perf_counter()
    bar = tqdm(total=len(data), desc=f"{bench.name} · {seg.attention}", unit="img", disable=not progress)
    try:
        for sample in data.samples(workers):
            metric.update(seg.predict(sample.image), torch.from_numpy(sample.mask))
            count += 1
            bar.update()
    finally:
        bar.close()
    loop_seconds = time.perf_counter() - loop_start
    if count == 0:
        raise ValueError(f"{bench.name}: the subset holds no images; nothing was evaluated or written")
    score = metric.compute()
    result = EvalResult(
        benchmark=bench.name,
        title=bench.title,
        miou=score.miou,
        iou=score.iou,
        class_names=bench.labels_list,
        num_images=count,
        num_pixels=score.num_pixels,
        seconds_per_image=loop_seconds / count,
        text_seconds=text_seconds,
        total_seconds=time.perf_counter() - start,
        settings=_plain(seg.describe()),  # as JSON stores it, so a reloaded result compares equal
        data=_plain(data.describe()),
        paper_miou=bench.paper_miou,
        released_miou=bench.released_miou,
        untrained=seg.untrained,
        model=_model_tag(seg),
        warning=SMOKE_WARNING if seg.untrained else None,
        device=str(seg.device),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=_versions(),
    )
    if out is not None:
        result.save(out)
    return result


def _segmenter(method, bench: Benchmark, model, device, overrides: dict) -> Segmenter:
    if isinstance(method, Segmenter):
        if model is not None or overrides:
            raise ValueError(
                "a Segmenter carries its own model and settings: pass model=/settings only with a method name, "
                f"e.g. evaluate('sclip', {bench.name!r}, model=model, pamr=True)"
            )
        if device is not None and torch.device(device) != method.device:
            raise ValueError(f"the Segmenter runs on {method.device}, not {device}: build it with device={device!r}")
        if method.num_classes != bench.num_classes or method.has_background != bench.has_background:
            raise ValueError(
                f"the Segmenter has {method.num_classes} classes (background: {method.has_background}) but "
                f"{bench.name} scores {bench.num_classes} (background: {bench.has_background}); build it with "
                f"sl.BENCHMARKS[{bench.name!r}].segmenter(model, attention)"
            )
        return method
    if not isinstance(method, str):
        raise TypeError(f"expected a Segmenter or an attention name, got {type(method).__name__}")
    if model is None:
        raise ValueError(f"evaluate({method!r}, ...) needs model=: the open_clip model to build the Segmenter from")
    if device is not None:
        overrides["device"] = device
    return bench.segmenter(model, method, **overrides)


def _plain(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def _model_tag(seg: Segmenter) -> str:
    w = seg.weights
    if w is None:
        return "unknown"
    tag = "untrained" if w.untrained else Path(str(w.pretrained)).stem
    return f"{w.model_name}-{tag}"


def _versions() -> dict:
    import open_clip

    from . import __version__

    return {"sclip_lib": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "python": platform.python_version()}  # fmt: skip


# -- tables -------------------------------------------------------------------------------------
def summary_rows(results: list[EvalResult]) -> list[dict]:
    """One row per result in the paper's column order (VOC21, C60, Obj, VOC20, C59, Stuff, City, ADE),
    with the paper's SCLIP numbers beside ours."""
    order = {name: i for i, name in enumerate(PAPER_ORDER)}
    rows = []
    for r in sorted(results, key=lambda r: order.get(r.benchmark, len(order))):
        rows.append({
            "benchmark": get_benchmark(r.benchmark).column,
            "attention": r.attention,
            "images": r.num_images,
            "mIoU": round(r.miou, 2),
            "paper": r.paper_miou,
            "released code": r.released_miou,
            "s/img": round(r.seconds_per_image, 3),
            "note": "SMOKE (untrained)" if r.untrained else ("subset" if r.data.get("limit") else ""),
        })  # fmt: skip
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table of dict rows (same keys), columns padded to fit."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[str(k) for k in keys]] + [["" if r[k] is None else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_summary(results: list[EvalResult], folder: str | os.PathLike, name: str = "summary") -> Path:
    """``<folder>/<name>.csv`` with :func:`summary_rows`, atomically; returns its path."""
    rows = summary_rows(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(Path(folder) / f"{name}.csv", buf.getvalue())

"""``evaluate``: run a :class:`Segmenter` over a benchmark and report mIoU as the paper's tables do.

    result = sl.evaluate("sclip", "voc21", model=model, limit=100, out="results/")
    result.miou, result.per_class(), result.seconds_per_image

mIoU is accumulated over the whole (sub)set at the ground truth's own resolution (:class:`MeanIoU`).
Results files (JSON, plus a per-class CSV) are written atomically: a temporary file in the same
folder, then ``os.replace``, so an interrupted or failed run leaves nothing half-written.

With ``out=``, progress is saved as the run goes: ``<stem>.partial.json`` holds the per-class
intersection, prediction and ground-truth pixel sums (float64, exact for integer counts) of the
images done, rewritten atomically every few images and when the run stops on an error or Ctrl-C.
``resume=True`` continues from it and ends with the same sums, so the same mIoU, as an uninterrupted
run. The sums are plain per-class totals, so runs over disjoint parts of a split add up.

A result also keeps every image's per-class intersection and union (``per_image``) and the
percentile bootstrap confidence interval over images computed from them (``interval``, seeded):
``result.confidence_interval(seed=1)`` recomputes it, also from a reloaded results file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..files import check_output_folder, write_atomic
from ..segmenter import Segmenter
from . import distributed
from .loading import SAMPLE_ERRORS, BadSample, BenchmarkData, load_benchmark
from .metrics import BOOTSTRAP_LEVEL, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, MeanIoU, bootstrap_miou
from .protocols import get_protocol
from .registry import PAPER_ORDER, Benchmark, get_benchmark

__all__ = [
    "evaluate",
    "EvalResult",
    "SMOKE_WARNING",
    "summary_rows",
    "format_table",
    "write_summary",
    "write_atomic",
    "result_stem",
    "settings_hash",
]

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
    paper_miou: float | None  # the method's paper number under this run's protocol; None: not comparable
    released_miou: float | None  # the method's number with its authors' released code, same protocol
    untrained: bool
    model: str = "unknown"  # e.g. ViT-B-16-openai, ViT-B-16-untrained
    warning: str | None = None
    device: str = "cpu"
    created: str = ""
    versions: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)  # [{"name", "error"}] of samples left out (skip_bad)
    protocol: str | None = None  # the protocol the run followed (None: custom settings)
    published_source: str = ""  # where paper_miou and released_miou were read
    # every image's [class, intersection, union] triples (pixels), for the bootstrap; [] in older files
    per_image: list = field(default_factory=list)
    # the bootstrap interval of miou over images: {"low", "high", "level", "resamples", "seed"}; None: unknown
    interval: dict | None = None

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

    def confidence_interval(
        self, level: float = BOOTSTRAP_LEVEL, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
    ) -> tuple[float, float]:
        """The percentile bootstrap interval (percent) of :attr:`miou` over this run's images."""
        if len(self.per_image) != self.num_images:
            raise ValueError(
                f"this result keeps the sums of {len(self.per_image)} of its {self.num_images} images (a file "
                "written before per-image sums were kept, or resumed from one): evaluate again to get an interval"
            )
        return bootstrap_miou(self.per_image, self.num_classes, resamples=resamples, level=level, seed=seed)

    @property
    def interval_text(self) -> str:
        """``"[low, high]"`` of the stored interval, one decimal; ``""`` when there is none."""
        return f"[{self.interval['low']:.1f}, {self.interval['high']:.1f}]" if self.interval else ""

    def stem(self) -> str:
        """A file name stem that tells runs apart: benchmark, attention, model, PAMR, subset, and a hash
        of every setting, the data and the model (:func:`settings_hash`)."""
        return result_stem(self.benchmark, self.settings, self.model, self.data.get("limit"), self.data)

    @property
    def settings_hash(self) -> str:
        """The hash in the file name: of the benchmark, every setting, the data and the model."""
        return settings_hash(self.benchmark, self.settings, self.data, self.model)

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["iou"] = [None if math.isnan(v) else v for v in self.iou]
        d["miou"] = None if math.isnan(self.miou) else self.miou
        d["num_classes"] = self.num_classes
        d["images_per_second"] = self.images_per_second
        d["settings_hash"] = self.settings_hash  # the file name's hash, so a file tells which run it is
        return d

    def to_json(self, path: str | os.PathLike, *, exclusive: bool = False) -> Path:
        """Write the result as JSON, atomically (``exclusive``: never replacing an existing file)."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", exclusive=exclusive)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the per-class IoU table (class index, name, IoU percent) as CSV, atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["class", "name", "iou"])
        for i, (name, v) in enumerate(zip(self.class_names, self.iou)):
            writer.writerow([i, name, "" if math.isnan(v) else f"{v:.4f}"])
        return write_atomic(path, buf.getvalue())

    def save(self, folder: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write ``<stem>.json`` and ``<stem>.csv`` into ``folder``; returns the JSON path.

        ``overwrite=False``: the JSON is created exclusively, so an existing result (another run's,
        even one finishing at the same moment) is never replaced: :class:`OutputExistsError`."""
        folder = Path(folder)
        path = self.to_json(folder / f"{self.stem()}.json", exclusive=not overwrite)  # the claim comes first
        self.to_csv(folder / f"{self.stem()}.csv")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EvalResult:
        """Read a result written by :meth:`to_json`."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        optional = {
            "model",
            "warning",
            "device",
            "created",
            "versions",
            "skipped",
            "protocol",
            "published_source",
            "per_image",
            "interval",
        }
        if missing - optional:
            raise ValueError(f"{path} is not an evaluation result: missing {sorted(missing)}")
        d = {k: v for k, v in d.items() if k in names}
        d["iou"] = [float("nan") if v is None else float(v) for v in d["iou"]]
        d["miou"] = float("nan") if d["miou"] is None else float(d["miou"])
        return cls(**d)


def settings_hash(benchmark: str, settings: dict, data: dict, model: str) -> str:
    """8 hex digits of SHA-256 over everything that shapes a result: the benchmark, every setting
    (templates, thresholds, batch size, ...), the data (source, subset) and the model."""
    key = {"benchmark": benchmark, "settings": settings, "data": data, "model": model}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]


def result_stem(benchmark: str, settings: dict, model: str, limit: int | None, data: dict | None = None) -> str:
    """The file name stem of a run: benchmark, attention, model, protocol, PAMR, final blocks, subset; with ``data``
    (the result's ``data``), the :func:`settings_hash` too, so runs that differ in any setting never
    share a file."""
    parts = [benchmark, settings.get("attention", "?"), model]
    if settings.get("protocol") not in (None, "sclip"):  # the default protocol: no name part
        parts.append(settings["protocol"])
    if settings.get("pamr"):
        parts.append("pamr")
    if settings.get("final_blocks", 1) != 1:  # the variant in the last N blocks
        parts.append(f"final{settings['final_blocks']}")
    if limit is not None:
        parts.append(f"limit{limit}")
    if data is not None:
        parts.append(settings_hash(benchmark, settings, data, model))
    return "_".join(p.replace("/", "-").replace(" ", "") for p in parts)


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
    resume: bool = False,
    skip_bad: bool = False,
    save_every: int = 5,
    protocol: str = "sclip",
    overwrite: bool = False,
    **overrides,
) -> EvalResult:
    """Evaluate a segmenter on a benchmark; returns an :class:`EvalResult`, saved to ``out`` if given.

    Under ``torchrun`` each process evaluates rows ``rank::world_size`` of the subset, the per-class
    areas are summed over all processes, every process returns the same result and only rank 0
    writes ``out`` (:mod:`sclip_lib.distributed`).

    Args:
        segmenter_or_method: a :class:`Segmenter` built for this benchmark's classes, or an attention
            name (``"sclip"``, ``"vanilla"``, ...) together with ``model=``: the segmenter is then built
            with the benchmark's classes, background and settings (:meth:`Benchmark.segmenter`).
        benchmark: a benchmark name, a :class:`Benchmark`, or samples from :func:`load_benchmark`.
        model: the open_clip model, when a method name is given.
        limit: the first ``limit`` images of the split (the same every time); ``source``: a local copy.
        device: where the segmenter runs (method name only; fp16 autocast on CUDA, as the authors ran).
        out: a results folder: ``<benchmark>_<attention>_<model>[...]_<hash>.json`` and ``.csv`` are written
            there (the hash covers every setting, the data and the model, see :func:`settings_hash`). It is
            checked (created, writable, no finished result of this run) before any work; progress is saved
            there as the run goes.
        workers: threads decoding images while the model runs (0: none).
        progress: show a tqdm progress bar (a widget in notebooks, text in terminals; rank 0 only).
        resume: continue the saved progress of this same run in ``out`` (an error without ``out``).
        skip_bad: leave out samples that cannot be read or hold out-of-range labels, and list them in
            the result (``skipped``); off by default, so a bad sample stops the run.
        save_every: save progress every this many images (with ``out``).
        overwrite: replace a finished result of the same run in ``out``; without it that result is kept
            and the run refused before any compute (also with ``resume`` and nothing to resume).
        protocol: for a method name, whose evaluation protocol to follow (``"sclip"``, ``"clearclip"``,
            ``"naclip"``, ``"maskclip"``; :data:`sclip_lib.benchmarks.PROTOCOLS`). The result carries the
            method's published number only when the run follows that method's own protocol.
        **overrides: for a method name, passed to the Segmenter (``templates=``, ``pamr=True``, ...).
    """
    if resume and out is None:
        raise ValueError("resume=True needs out=: progress is saved in the results folder")
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"save_every must be a positive int, got {save_every!r}")
    shard = distributed.context()  # torchrun: this process's share of the rows
    device = distributed.local_device(device)
    data = benchmark if isinstance(benchmark, BenchmarkData) else None
    bench = data.benchmark if data is not None else get_benchmark(benchmark)
    seg = _segmenter(segmenter_or_method, bench, model, device, protocol, overrides)
    folder = check_output_folder(out) if out is not None else None  # before any data or compute
    if data is None:
        data = load_benchmark(bench, limit=limit, source=source, workers=workers, check=False)
        data.check(skip_bad=skip_bad)  # a wrong or empty source fails now; a bad first row only without skip_bad
    elif limit is not None or source is not None:
        raise ValueError("limit and source belong to load_benchmark when samples are passed in; pass them there")
    settings, described = _plain(seg.describe()), _plain(data.describe())
    part = f".rank{shard.rank}of{shard.world_size}" if shard.distributed else ""  # one progress file per process
    state = _Progress(bench, settings, described, _model_tag(seg), folder, resume, part)
    if folder is not None and not overwrite:
        _keep_finished(folder / f"{state.stem}.json", resume and not state.resumed)

    start = time.perf_counter()
    seg.stages.text_features()  # once, outside the per-image timing
    text_seconds = time.perf_counter() - start
    metric = state.metric
    loop_start = time.perf_counter() - state.loop_seconds
    rows = distributed.shard_rows(data, shard)
    show = progress and shard.is_main
    desc = f"{bench.name} · {seg.attention}"
    bar = tqdm(total=len(rows), initial=state.rows, desc=desc, unit="img", disable=not show)
    samples = rows.samples(workers, start=state.rows, skip_bad=skip_bad)
    try:
        # windows of consecutive images share encoder batches; masks are those of seg.predict
        for sample, pred in seg.predict_many(samples, _image_of, errors=SAMPLE_ERRORS if skip_bad else ()):
            if isinstance(sample, BadSample):
                state.skip(sample.name, sample.error)
            else:
                try:
                    if isinstance(pred, BaseException):
                        raise pred
                    metric.update(pred, torch.from_numpy(sample.mask))
                    state.images += 1
                except SAMPLE_ERRORS as err:
                    if not skip_bad:
                        raise
                    state.skip(sample.name, f"{type(err).__name__}: {err}")
            state.rows += 1
            bar.update()
            if state.rows % save_every == 0:
                state.save(time.perf_counter() - loop_start)
    except BaseException as err:
        if state.save(time.perf_counter() - loop_start):
            err.add_note(
                f"progress of {state.images} images saved in {state.path}: rerun with resume=True "
                "(sclip evaluate --resume) to continue"
                + (
                    ""
                    if skip_bad or not isinstance(err, SAMPLE_ERRORS)
                    else "; skip_bad=True (--skip-bad) leaves out bad samples"
                )
            )
        raise
    finally:
        bar.close()
    loop_seconds = time.perf_counter() - loop_start
    # -- sharded run: sum over all processes (exact: integer-valued float64), the slowest rank's time
    images = torch.tensor([state.images], dtype=torch.int64)
    loop_seconds = distributed.all_reduce_sums(
        shard, metric.intersection, metric.pred_area, metric.target_area, images, maximum=loop_seconds
    )
    state.images = int(images)
    skipped = distributed.gather_lists(shard, state.skipped)
    known = distributed.gather_lists(shard, [metric.per_image is not None])  # a rank resumed from an older file?
    per_image = distributed.gather_lists(shard, metric.per_image or []) if all(known) else []
    if state.images == 0:
        raise ValueError(f"{bench.name}: the subset holds no usable images; nothing was evaluated or written")
    score = metric.compute()
    result = EvalResult(
        benchmark=bench.name,
        title=bench.title,
        miou=score.miou,
        iou=score.iou,
        class_names=bench.class_names,
        num_images=state.images,
        num_pixels=score.num_pixels,
        seconds_per_image=loop_seconds / state.images,
        text_seconds=text_seconds,
        total_seconds=time.perf_counter() - start,
        settings=settings,  # as JSON stores it, so a reloaded result compares equal
        data=described,
        **_published(seg, bench),
        untrained=seg.untrained,
        model=_model_tag(seg),
        warning=SMOKE_WARNING if seg.untrained else None,
        device=str(seg.device),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=_versions(),
        skipped=skipped,
        per_image=per_image,
    )
    if len(per_image) == state.images:
        low, high = result.confidence_interval()
        result.interval = {
            "low": low,
            "high": high,
            "level": BOOTSTRAP_LEVEL,
            "resamples": BOOTSTRAP_RESAMPLES,
            "seed": BOOTSTRAP_SEED,
        }
    if folder is not None and shard.is_main:
        result.save(folder, overwrite=overwrite)
    if folder is not None:
        state.finish()
    return result


def _keep_finished(path: Path, nothing_to_resume: bool) -> None:
    """Refuse, before any compute, a run whose finished result is in the folder already."""
    if not path.exists():
        return
    if nothing_to_resume:
        raise ValueError(
            f"resume: there is no saved progress of this evaluation to continue, and its finished result "
            f"{path} exists; it is kept. Pass overwrite=True (sclip evaluate --overwrite) to compute it again"
        )
    raise ValueError(
        f"{path} holds the finished result of this evaluation (same settings, data and model); it is kept. "
        "Pass overwrite=True (sclip evaluate --overwrite) to compute it again, or choose another out folder"
    )


class _Progress:
    """The running sums of one evaluation and their ``<stem>.partial.json`` file in the results folder."""

    FORMAT = 1

    def __init__(
        self,
        bench: Benchmark,
        settings: dict,
        data: dict,
        model: str,
        folder: Path | None,
        resume: bool,
        part: str = "",
    ):
        self.key = {"benchmark": bench.name, "settings": settings, "data": data, "model": model}
        self.metric = MeanIoU(bench.num_classes, class_names=bench.class_names)
        self.rows = 0  # rows of the split consumed, bad ones included
        self.images = 0  # images scored
        self.skipped: list[dict] = []
        self.loop_seconds = 0.0
        self.stem = result_stem(bench.name, settings, model, data.get("limit"), data)
        self.path = folder / f"{self.stem}{part}.partial.json" if folder else None
        self.resumed = False
        if self.path is not None and resume and not self.path.exists():
            self._refuse_other_progress(folder, result_stem(bench.name, settings, model, data.get("limit")), part)
        if self.path is not None and self.path.exists():
            if not resume:
                raise ValueError(
                    f"{self.path} holds the saved progress of an interrupted run of this evaluation: pass "
                    "resume=True (sclip evaluate --resume) to continue it, or delete the file to start over"
                )
            self._load()

    def _refuse_other_progress(self, folder: Path, readable: str, part: str) -> None:
        """``resume`` with the progress of this benchmark, method and model saved under other settings
        (another hash in its name): refuse, rather than start afresh beside it."""
        pattern = re.compile(re.escape(readable) + r"_[0-9a-f]{8}" + re.escape(part) + r"\.partial\.json")
        others = sorted(p for p in folder.glob(f"{readable}_*.partial.json") if pattern.fullmatch(p.name))
        if others:
            raise ValueError(
                f"{others[0]} is the progress of a run with other settings, data or model; resume with the "
                "same arguments, or delete the file to start over"
            )

    def _load(self) -> None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            same = saved.get("format") == self.FORMAT and saved["key"] == self.key
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{self.path} is not a readable progress file ({err}); delete it to start over") from None
        if not same:
            raise ValueError(
                f"{self.path} is the progress of a run with other settings, data or model; resume with the "
                "same arguments, or delete the file to start over"
            )
        try:
            names = ("intersection", "pred_area", "target_area")
            sums = {name: _sums(saved[name], self.metric.num_classes) for name in names}
            rows, images, seconds = saved["rows"], saved["images"], float(saved["loop_seconds"])
            skipped = saved["skipped"]
            if not (isinstance(rows, int) and isinstance(images, int) and 0 <= images <= rows):
                raise ValueError(f"{images!r} images in {rows!r} rows")
            if not isinstance(skipped, list) or not all(
                isinstance(s, dict) and {"name", "error"} <= s.keys() for s in skipped
            ):
                raise ValueError("its list of skipped samples is malformed")
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(
                f"{self.path} is damaged ({type(err).__name__}: {err}); it cannot be resumed: delete it to start over"
            ) from None
        for name, values in sums.items():
            setattr(self.metric, name, values)
        self.rows, self.images, self.skipped, self.loop_seconds = rows, images, list(skipped), seconds
        self.metric.per_image = saved.get("per_image")  # None: an older file without them; no interval
        self.resumed = True

    def skip(self, name: str, error: str) -> None:
        self.skipped.append({"name": name, "error": error})

    def save(self, loop_seconds: float) -> bool:
        """Write the sums so far (atomically); False when there is nowhere or nothing to write."""
        if self.path is None or self.rows == 0:
            return False
        m = self.metric
        state = {
            "format": self.FORMAT,
            "key": self.key,
            "rows": self.rows,
            "images": self.images,
            "skipped": self.skipped,
            "loop_seconds": loop_seconds,
            "intersection": m.intersection.tolist(),
            "pred_area": m.pred_area.tolist(),
            "target_area": m.target_area.tolist(),
            "per_image": m.per_image,
        }
        write_atomic(self.path, json.dumps(state, allow_nan=False) + "\n")
        return True

    def finish(self) -> None:
        """The results are written: the progress file has served its purpose."""
        if self.path is not None and self.path.exists():
            self.path.unlink()


def _sums(values, num_classes: int) -> torch.Tensor:
    """One per-class sum of a progress file: ``num_classes`` finite values >= 0."""
    if not isinstance(values, list) or len(values) != num_classes:
        held = len(values) if isinstance(values, list) else repr(values)
        raise ValueError(f"a per-class sum holds {held} values, not {num_classes}")
    tensor = torch.tensor(values, dtype=torch.float64)
    if not torch.isfinite(tensor).all() or (tensor < 0).any():
        raise ValueError("a per-class sum holds negative or non-finite values")
    return tensor


def _image_of(sample):
    return None if isinstance(sample, BadSample) else sample.image


def _published(seg: Segmenter, bench: Benchmark) -> dict:
    """The method's published numbers, only if ``seg`` runs that method under the method's own protocol."""
    none = {"paper_miou": None, "released_miou": None, "protocol": seg.protocol, "published_source": ""}
    if seg.protocol is None:
        return none
    paper, released = get_protocol(seg.protocol).numbers(bench, seg.attention)
    # a number measured with another PAMR setting (NACLIP's paper figures: PAMR off) is not this run's
    paper, released = ((p if p is None or p.pamr in (None, seg.settings.pamr) else None) for p in (paper, released))
    if paper is None and released is None:  # this method was not published under this protocol
        return none
    sources = [f"{label}: {p.source}" for label, p in (("paper", paper), ("released", released)) if p]
    return {
        "paper_miou": paper.miou if paper else None,
        "released_miou": released.miou if released else None,
        "protocol": seg.protocol,
        "published_source": "; ".join(sources),
    }


def _segmenter(method, bench: Benchmark, model, device, protocol: str, overrides: dict) -> Segmenter:
    if isinstance(method, Segmenter):
        if model is not None or overrides or protocol != "sclip":
            raise ValueError(
                "a Segmenter carries its own model and settings: pass model=, protocol= or settings only with a "
                "method name, "
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
    return bench.segmenter(model, method, protocol=protocol, **overrides)


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

    from ..version import __version__

    return {
        "sclip_lib": __version__,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
    }


# -- tables -------------------------------------------------------------------------------------
def summary_rows(results: list[EvalResult]) -> list[dict]:
    """One row per result in the paper's column order (VOC21, C60, Obj, VOC20, C59, Stuff, City, ADE).

    Each row names the protocol it ran under and shows the method's published numbers only when that
    protocol is the method's own (empty otherwise: another protocol's number is not like for like)."""
    order = {name: i for i, name in enumerate(PAPER_ORDER)}
    rows = []
    for r in sorted(results, key=lambda r: order.get(r.benchmark, len(order))):
        rows.append(
            {
                "benchmark": get_benchmark(r.benchmark).column,
                "attention": r.attention,
                "protocol": r.protocol or "custom",
                "images": r.num_images,
                "mIoU": round(r.miou, 2),
                "95% CI": r.interval_text,
                "paper": r.paper_miou,
                "released code": r.released_miou,
                "s/img": round(r.seconds_per_image, 3),
                "note": "; ".join(
                    n
                    for n in (
                        "SMOKE (untrained)" if r.untrained else ("subset" if r.data.get("limit") else ""),
                        f"{len(r.skipped)} skipped" if r.skipped else "",
                    )
                    if n
                ),
            }
        )
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
    """``<folder>/<name>.csv`` with :func:`summary_rows` of every result in ``folder`` and ``results``.

    The table is rebuilt from all result files in the folder under a lock on the folder, so runs
    writing into the same folder at the same time never drop each other's rows. Returns its path.
    """
    folder = Path(folder)
    with _folder_lock(folder):
        found = {r.stem(): r for r in _results_in(folder)}
        found.update({r.stem(): r for r in results})
        rows = summary_rows(list(found.values()))
        if not rows:
            raise ValueError(f"{folder} holds no evaluation results to summarise")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return write_atomic(folder / f"{name}.csv", buf.getvalue())


def _results_in(folder: Path) -> list[EvalResult]:
    """Every readable result JSON in ``folder`` (progress files and other JSON are passed over)."""
    results = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".partial.json"):
            continue
        try:
            results.append(EvalResult.load(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return results


@contextmanager
def _folder_lock(folder: Path):
    """An exclusive ``flock`` on the folder itself (no lock file left behind); a no-op where unsupported."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock

"""The paper's 8 benchmarks: data source, label conversion, class names and inference settings.

Settings and label conventions are the paper's (reference sections 3 and 4); the published numbers
are kept beside them for the summary tables. Hub repositories were chosen from their public file
listings; their mask encodings could not be checked offline, so :func:`load_benchmark` checks the
first rows of every source against the conversion's accepted values and fails clearly when they differ.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources

from ..segmenter import Segmenter, Settings
from ..text import OPENAI_IMAGENET_TEMPLATES
from . import labels as L
from .protocols import get_protocol
from .published import published

__all__ = [
    "Benchmark",
    "HubSource",
    "BENCHMARKS",
    "PAPER_ORDER",
    "UnknownBenchmarkError",
    "get_benchmark",
    "read_classes",
]


class UnknownBenchmarkError(KeyError):
    """No benchmark by that name; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset repo: what ``datasets.load_dataset`` needs, and where its parquet files lie.

    ``data_files`` is the glob (relative to the repo root) of the split's parquet files. It is passed to
    ``load_dataset`` for the hub too, so it alone selects the split's files: in a parquet-converted repo
    (``revision="refs/convert/parquet"``) the config is just the first folder of that path and the split
    is named by the folder, with no metadata for ``name=`` to select. A local copy in the repo's own layout
    is found by the same glob.

    What is known of the repo's schema and layout (``schema``) is what the test suite's local hub
    (``sclip_lib/testing/hub_repos.py``) serves, so the two can only change together: ``mask_mode`` is the
    PIL mode of the stored masks, ``siblings`` the repo's other parquet paths (other splits and configs).
    """

    repo: str
    split: str
    image_column: str
    mask_column: str
    data_files: str
    revision: str | None = None
    note: str = ""
    mask_mode: str = "L"
    schema: str = "guess: file layout, columns and mask encoding not checked against the hub copy"
    siblings: tuple[str, ...] = ()

    def describe(self) -> dict:
        keep = ("repo", "split", "image_column", "mask_column", "data_files", "revision", "note")
        return {k: getattr(self, k) for k in keep if getattr(self, k)}


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the paper. ``segmenter(model)`` builds a :class:`Segmenter` with its settings."""

    name: str
    title: str
    column: str  # the column header of the paper's tables
    num_images: int  # the full validation split
    label_map: L.LabelMap  # the benchmark's raw mask values -> its class indices (255: ignored)
    settings: Settings
    has_background: bool
    hub: HubSource | None
    layout: str  # the original folder layout understood by ``source=`` (see layouts.py)
    class_file: str = field(default="")

    @property
    def paper_miou(self) -> float | None:
        """SCLIP's number in its paper (:mod:`sclip_lib.evaluation.published`)."""
        number = published("sclip", "sclip", self.name)
        return number.miou if number else None

    @property
    def released_miou(self) -> float | None:
        """SCLIP's number with its released code (wangf3014/SCLIP README)."""
        number = published("sclip", "sclip", self.name, "released")
        return number.miou if number else None

    @cached_property
    def class_lines(self) -> list[str]:
        """Every class of the benchmark's own class file, class 0 (the background, if any) first."""
        return read_classes(self.class_file or f"{self.name}.txt")

    @property
    def num_classes(self) -> int:
        return len(self.class_lines)

    @property
    def background(self) -> str | None:
        """The names of class 0 when the benchmark scores a background, else None."""
        return self.class_lines[0] if self.has_background else None

    @property
    def classes(self) -> list[str]:
        """The classes passed to :class:`Segmenter` (without the background, given separately)."""
        return self.class_lines[1:] if self.has_background else list(self.class_lines)

    @property
    def class_names(self) -> list[str]:
        """One display name per scored class, class 0 first."""
        return [line.split(",")[0].strip() for line in self.class_lines]

    def segmenter(self, model, attention: str = "sclip", protocol: str = "sclip", **overrides) -> Segmenter:
        """A :class:`Segmenter` with this benchmark's classes, background and settings under ``protocol``.

        ``protocol`` (``"sclip"``, ``"clearclip"``, ``"naclip"``, ``"maskclip"``, ``"resclip"``; see
        :data:`sclip_lib.benchmarks.PROTOCOLS`) chooses the settings, class file, prompt templates and
        precision a method's authors evaluated with, and for modifiers such as ResCLIP's ``"+rcs+sfr"``
        their per-benchmark weights; the default is SCLIP's. ``overrides`` go to
        :class:`Segmenter`: ``device``, ``templates``, ``precision`` or any field of :class:`Settings`
        (``pamr=True``, ``batch_size=...``).
        """
        proto = get_protocol(protocol)
        settings = proto.settings_for(self)
        lines = (
            self.class_lines
            if proto.class_file(self) == (self.class_file or f"{self.name}.txt")
            else read_classes(proto.class_file(self))
        )
        if len(lines) != self.num_classes:
            raise ValueError(
                f"{proto.class_file(self)} lists {len(lines)} classes, {self.name} scores {self.num_classes}"
            )
        background = lines[0] if self.has_background else None
        classes = lines[1:] if self.has_background else list(lines)
        options = {**proto.segmenter_options(), **overrides}
        seg = Segmenter(
            model, classes, proto.attention_for(self, attention), background=background, settings=settings, **options
        )
        # a run is "under the protocol" only if no override changed what shapes its numbers
        follows = _follows(seg, settings, proto.segmenter_options()) and _same_modifiers(seg, proto, self)
        seg.protocol = proto.name if follows else None
        return seg

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "num_classes": self.num_classes,
            "label_map": self.label_map.name,
            "hub": self.hub.describe() if self.hub else None,
            "paper_miou": self.paper_miou,
            "released_miou": self.released_miou,
        }


def _follows(seg: Segmenter, settings: Settings, options: dict) -> bool:
    """Whether ``seg`` runs with the protocol's ``settings`` and options (batch size and device aside)."""
    same_settings = replace(seg.settings, batch_size=settings.batch_size) == settings
    same_templates = seg.templates == tuple(options.get("templates", OPENAI_IMAGENET_TEMPLATES))
    same_precision = "precision" not in options or seg.precision == options["precision"]
    return same_settings and same_templates and same_precision


def _same_modifiers(seg: Segmenter, proto, bench) -> bool:
    """Whether ``seg``'s modifiers (ResCLIP's weights, say) are the ones ``proto`` gives ``bench``."""
    own = proto.attention_for(bench, seg.attention)
    return isinstance(own, str) or dict(own.params) == dict(seg.encoder.variant.params)


def read_classes(filename: str) -> list[str]:
    """A packaged class file: one class per line, synonyms separated by ', ', '#' starts a comment line."""
    text = resources.files(__package__).joinpath("classes", filename).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _settings(short_side: int, logit_scale: float, prob_thd: float = 0.0, area_thd: float | None = None) -> Settings:
    return Settings(short_side=short_side, logit_scale=logit_scale, prob_thd=prob_thd, area_thd=area_thd)


_VOC_HUB = HubSource(
    "nateraw/pascal-voc-2012",
    "val",
    "image",
    "mask",
    "data/val-*.parquet",
    mask_mode="P",
    schema="card: columns image and mask (both Image), splits train/val, 1449 val rows; guess: the parquet "
    "file names and palette ('P') masks as in VOC's SegmentationClass",
    siblings=("data/train-00000-of-00001.parquet",),
)
_COCO_HUB = HubSource(
    "GATE-engine/COCOStuff164K",
    "val",
    "image",
    "mask",
    "default/val/*.parquet",
    revision="refs/convert/parquet",
    note="~2.4 GB for the 5000 val images; masks are expected to be the official stuff-thing maps",
    schema="guess: config 'default', split folder 'val', columns image and mask, grey ('L') stuff-thing maps",
    siblings=("default/train/0000.parquet",),
)
_NO_CONTEXT_HUB = None  # PASCAL Context: no usable hub copy; pass source= a local folder

_BENCHMARKS = [
    Benchmark(
        "voc21",
        "PASCAL VOC 2012 val, 20 classes + background",
        "VOC21",
        1449,
        L.identity(21),
        _settings(336, 65, 0.1, 0.1),
        True,
        _VOC_HUB,
        "voc",
    ),
    Benchmark(
        "context60",
        "PASCAL Context val, 59 classes + background",
        "C60",
        5105,
        L.identity(60),
        _settings(336, 50, 0.1),
        True,
        _NO_CONTEXT_HUB,
        "context",
    ),
    # COCO-Object's class file drops "bed" from the authors' background words (a deliberate deviation):
    # "bed" is also class 60, and with the duplicate the argmax tie always gave the background.
    Benchmark(
        "coco_object",
        "COCO-Object (COCO val2017), 80 things + background",
        "Obj",
        5000,
        L.coco_object_81(),
        _settings(336, 50, 0.1),
        True,
        _COCO_HUB,
        "coco",
    ),
    Benchmark(
        "voc20",
        "PASCAL VOC 2012 val, 20 classes, background ignored",
        "VOC20",
        1449,
        L.reduce_zero_label(20),
        _settings(336, 40),
        False,
        _VOC_HUB,
        "voc",
    ),
    Benchmark(
        "context59",
        "PASCAL Context val, 59 classes, background ignored",
        "C59",
        5105,
        L.reduce_zero_label(59),
        _settings(336, 40),
        False,
        _NO_CONTEXT_HUB,
        "context",
    ),
    Benchmark(
        "coco_stuff",
        "COCO-Stuff 164k val2017, 171 classes",
        "Stuff",
        5000,
        L.coco_stuff_171(),
        _settings(448, 40),
        False,
        _COCO_HUB,
        "coco",
    ),
    Benchmark(
        "cityscapes",
        "Cityscapes val, 19 classes",
        "City",
        500,
        L.cityscapes_to_train_ids(),
        _settings(560, 40),
        False,
        HubSource(
            "Chris1/cityscapes",
            "validation",
            "image",
            "semantic_segmentation",
            "data/validation-*.parquet",
            note="the Cityscapes licence forbids redistribution: load it, never ship it",
            schema="guess: columns image and semantic_segmentation, grey ('L') label-id masks, "
            "parquet files under data/",
            siblings=("data/train-00000-of-00001.parquet",),
        ),
        "cityscapes",
    ),
    Benchmark(
        "ade20k",
        "ADE20K (SceneParse150) val, 150 classes",
        "ADE",
        2000,
        L.reduce_zero_label(150),
        _settings(336, 40),
        False,
        HubSource(
            "zhoubolei/scene_parse_150",
            "validation",
            "image",
            "annotation",
            "scene_parsing/validation/*.parquet",
            revision="refs/convert/parquet",
            note="the main branch holds a loading script, which datasets no longer runs",
            schema="card: configs scene_parsing and instance_segmentation, columns image and "
            "annotation; the converter's layout <config>/<split>/NNNN.parquet; guess: "
            "grey ('L') annotations 0..150 as in ADEChallengeData2016",
            siblings=("scene_parsing/train/0000.parquet", "instance_segmentation/validation/0000.parquet"),
        ),
        "ade20k",
    ),
]

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _BENCHMARKS}
# The paper's column order: VOC21, C60, Obj (with background), then VOC20, C59, Stuff, City, ADE.
PAPER_ORDER = tuple(b.name for b in _BENCHMARKS)


def get_benchmark(name: str | Benchmark) -> Benchmark:
    """The registered benchmark ``name`` (case and '-' insensitive); an :class:`UnknownBenchmarkError` (a ``KeyError``) lists the valid names."""
    if isinstance(name, Benchmark):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key not in BENCHMARKS:
        close = difflib.get_close_matches(key, BENCHMARKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}.{hint} Valid names: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]

"""sclip_lib: turn any open_clip ViT into a training-free open-vocabulary segmenter.

    import sclip_lib as sl
    model = sl.load_clip("ViT-B-16", pretrained="openai")
    seg = sl.Segmenter(model, ["cat", "sofa, couch", "remote control"], attention="sclip")
    mask = seg.predict(image)        # (H, W) int64 class indices

The package's layers, each importing only those below it (checked by import-linter in ``make test``):

- the core, in this folder: models, images, windows, attention, encoder, resclip, text, segmenter and its
  stages, merge, postprocess, pamr, localisation, viz; needs neither ``datasets`` nor pandas;
- ``evaluation/``: the paper's benchmarks (registry, protocols, published numbers, labels, loading), the
  mIoU metric, the evaluation loop and its results files, distributed runs;
- ``cli/``: the ``sclip`` command;
- ``book/``: what the book's chapters use (nothing below imports it);
- ``testing/``: the local Hugging Face hub and other test helpers.

The evaluation names below (``evaluate``, ``load_benchmark``, ``BENCHMARKS``, ...) are imported when first
used, so ``import sclip_lib`` stays light and works without the ``[eval]`` extra.
"""

import importlib

from . import viz as viz  # sl.viz: drawing masks and overlays
from .attention import (
    ATTENTIONS,
    AttentionContext,
    Prior,
    get_attention,
    is_attention,
    list_attentions,
    list_modifiers,
    register_attention,
    register_modifier,
)
from .encoder import DenseEncoder
from .localisation import SegmentShare, patch_segments, segment_attention_share
from .models import CHECKPOINT_DIR_ENV, WeightsError, load_clip, weights_info
from .pamr import PAMR
from .resclip import resclip
from .segmenter import Segmenter, Settings
from .text import OPENAI_IMAGENET_TEMPLATES, STUFF_BACKGROUND, parse_classes, read_class_file, text_embeddings
from .version import __version__
from .windows import sliding_windows

# the evaluation layer's public names, imported on first use (PEP 562)
_EVALUATION = ("BENCHMARKS", "PROTOCOLS", "Benchmark", "load_benchmark", "evaluate", "IoUResult", "MeanIoU")


def __getattr__(name: str):
    if name in _EVALUATION or name == "evaluation":
        # the first use; later ones find the names in this module (`from . import` would call back here)
        evaluation = importlib.import_module(".evaluation", __name__)
        globals().update({n: getattr(evaluation, n) for n in _EVALUATION})
        return evaluation if name == "evaluation" else globals()[name]
    raise AttributeError(f"module 'sclip_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EVALUATION))


__all__ = [
    "ATTENTIONS",
    "AttentionContext",
    "BENCHMARKS",
    "Benchmark",
    "CHECKPOINT_DIR_ENV",
    "DenseEncoder",
    "IoUResult",
    "MeanIoU",
    "OPENAI_IMAGENET_TEMPLATES",
    "PAMR",
    "PROTOCOLS",
    "Prior",
    "STUFF_BACKGROUND",
    "Segmenter",
    "Settings",
    "SegmentShare",
    "WeightsError",
    "__version__",
    "evaluate",
    "get_attention",
    "is_attention",
    "list_attentions",
    "list_modifiers",
    "load_benchmark",
    "load_clip",
    "parse_classes",
    "patch_segments",
    "read_class_file",
    "register_attention",
    "register_modifier",
    "resclip",
    "segment_attention_share",
    "sliding_windows",
    "text_embeddings",
    "weights_info",
]

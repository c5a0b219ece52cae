"""sclip_lib: turn any open_clip ViT into a training-free open-vocabulary segmenter.

    import sclip_lib as sl
    model = sl.load_clip("ViT-B-16", pretrained="openai")
    seg = sl.Segmenter(model, ["cat", "sofa, couch", "remote control"], attention="sclip")
    mask = seg.predict(image)        # (H, W) int64 class indices
"""

from . import viz
from .attention import ATTENTIONS, AttentionContext, Prior, register_attention, register_modifier
from .benchmarks import BENCHMARKS, PROTOCOLS, Benchmark, load_benchmark
from .encoder import DenseEncoder
from .metrics import IoUResult, MeanIoU
from .models import CHECKPOINT_DIR_ENV, WeightsError, load_clip, weights_info
from .pamr import PAMR
from .resclip import resclip
from .segmenter import Segmenter, Settings
from .evaluate import evaluate
from .localisation import SegmentShare, patch_segments, segment_attention_share
from .text import OPENAI_IMAGENET_TEMPLATES, STUFF_BACKGROUND, parse_classes, read_class_file, text_embeddings
from .windows import sliding_windows

try:  # written once, in pyproject.toml; CITATION.cff is checked against it (tests/test_packaging.py)
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("sclip_lib")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

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
    "evaluate",
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

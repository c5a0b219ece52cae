"""The evaluation layer: the paper's 8 benchmarks, their protocols and published numbers, the mIoU metric,
the evaluation loop and its results files, distributed runs.

    import sclip_lib as sl
    data = sl.load_benchmark("voc21", limit=100)           # streamed from the hub, first 100 images
    data = sl.load_benchmark("context59", source="/data/VOCdevkit/VOC2010")   # a local folder
    for sample in data: ...                                 # Sample(name, image, mask)
    result = sl.evaluate("sclip", "voc21", model=model, limit=100, out="results/")

Loading reads Hugging Face ``datasets`` (the ``[eval]`` extra), imported when data is first loaded.
"""

from .labels import IGNORE, LabelError, LabelMap
from .layouts import LayoutError
from .loading import BenchmarkData, BenchmarkSourceError, Sample, load_benchmark
from .loop import EvalResult, evaluate
from .metrics import IoUResult, MeanIoU
from .protocols import PROTOCOLS, Protocol, Published, UnknownProtocolError, get_protocol
from .registry import BENCHMARKS, PAPER_ORDER, Benchmark, HubSource, UnknownBenchmarkError, get_benchmark

__all__ = [
    "BENCHMARKS",
    "IGNORE",
    "PAPER_ORDER",
    "PROTOCOLS",
    "Benchmark",
    "BenchmarkData",
    "BenchmarkSourceError",
    "EvalResult",
    "HubSource",
    "IoUResult",
    "LabelError",
    "LabelMap",
    "LayoutError",
    "MeanIoU",
    "Protocol",
    "Published",
    "Sample",
    "UnknownBenchmarkError",
    "UnknownProtocolError",
    "evaluate",
    "get_benchmark",
    "get_protocol",
    "load_benchmark",
]

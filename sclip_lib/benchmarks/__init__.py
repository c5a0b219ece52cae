"""The paper's 8 benchmarks: registry, label conversions, class names and ``load_benchmark``.

    import sclip_lib as sl
    data = sl.load_benchmark("voc21", limit=100)           # streamed from the hub, first 100 images
    data = sl.load_benchmark("context59", source="/data/VOCdevkit/VOC2010")   # a local folder
    for sample in data: ...                                 # Sample(name, image, mask)
"""

from .labels import IGNORE, LabelError, LabelMap
from .layouts import LayoutError
from .loading import BenchmarkData, BenchmarkSourceError, Sample, load_benchmark
from .protocols import PROTOCOLS, Protocol, Published, UnknownProtocolError, get_protocol
from .registry import BENCHMARKS, PAPER_ORDER, Benchmark, HubSource, UnknownBenchmarkError, get_benchmark

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "Published",
    "UnknownProtocolError",
    "get_protocol",
    "BENCHMARKS",
    "IGNORE",
    "PAPER_ORDER",
    "Benchmark",
    "BenchmarkData",
    "BenchmarkSourceError",
    "HubSource",
    "LabelError",
    "LabelMap",
    "LayoutError",
    "Sample",
    "UnknownBenchmarkError",
    "get_benchmark",
    "load_benchmark",
]

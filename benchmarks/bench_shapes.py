"""``predict`` against the bare encoder at each benchmark's typical image shape; prints a table (untrained weights).

    python benchmarks/bench_shapes.py [--quick] [--models ViT-B-16,ViT-L-14] [--benchmarks voc21,...]
                                      [--repeats 3] [--large-repeats 2] [--threads 1] [--device cpu]

For each of the paper's 8 benchmarks (classes, background, short side and thresholds from the registry,
one prompt template: text encoding is outside every figure) and each model:

- ratio: ``predict`` time over the bare encoder's time for the same windows in the same batches (target
  <= 1.1). The two are timed in turn, repeat after repeat, so that a change of machine load hits both
  alike; the median of the paired ratios is kept;
- by parts: 1 + (merge + post + rest) / encoder, each part timed on its own (medians): on a loaded
  machine the encoder's own time varies by more than predict's overhead; this figure varies less;
- merge, post: the shares of ``predict`` taken by merging the windows (placing their patch logits, the
  small per-axis products) and by the post-processing (the logits at the original size, scores, labels),
  each timed on its own from the same encoder output ("rest": checks, resize, crops, cosine with the text);
- peak: the resident memory added during one ``predict`` (sampled every millisecond);
- same: the fraction of pixels whose label equals the canvas path's (``window_logits``: every window
  upsampled and summed into a canvas, then resized), from the same encoder output.

Times are CPU seconds of this process on a CPU (``--threads 1``: other load on a shared machine
slows a thread but does not bill it), wall seconds on a GPU. They do not depend on the weights' values.
``--quick``: ViT-B/16 only, 3 repeats.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings

import numpy as np
import torch
from bench_segmenter import ONE_TEMPLATE, sync

import sclip_lib as sl
from sclip_lib.stages import add_windows

try:
    from sclip_lib.merge import MergedLogits
except ImportError:  # a checkout from before the merged windows (issue 23): --ratio-only measures its baseline
    MergedLogits = None

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
# typical validation image (height, width): VOC and PASCAL Context 500x375 landscape, COCO 640x480,
# Cityscapes 2048x1024, ADE20K 683x512 (its most common size; ../shared/data samples)
SHAPES = {
    "voc21": (375, 500),
    "context60": (375, 500),
    "coco_object": (480, 640),
    "voc20": (375, 500),
    "context59": (375, 500),
    "coco_stuff": (480, 640),
    "cityscapes": (1024, 2048),
    "ade20k": (512, 683),
}


def timed(fn, device: str) -> float:
    """Seconds of ``fn``: this process's CPU time on a CPU (what other load on a shared machine disturbs
    least), wall time on a GPU."""
    clock = time.perf_counter if device != "cpu" else time.process_time
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


class PeakRSS:
    """Resident memory sampled every millisecond in a thread, while the ``with`` block runs."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def added_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def row(model, model_name: str, bench: str, device: str, repeats: int, ratio_only: bool = False) -> dict:
    seg = sl.BENCHMARKS[bench].segmenter(model, templates=ONE_TEMPLATE, device=device)
    seg.stages.text_features()  # cached before timing
    image = np.random.default_rng(0).integers(0, 256, (*SHAPES[bench], 3), dtype=np.uint8)
    rgb, x = seg.stages.preprocess(image)
    windows = seg.stages.windows(*x.shape[-2:])
    size = seg.settings.batch_size
    batches = [windows[i : i + size] for i in range(0, len(windows), size)]
    crops = [torch.cat([x[..., y1:y2, x1:x2] for y1, y2, x1, x2 in b]) for b in batches]

    def encoder():
        with torch.no_grad(), seg.stages.autocast():
            for c in crops:
                seg.encoder.dense_features(c)

    logits = [seg.stages.crop_logits(c) for c in crops]  # also the warm-up of both

    def merge() -> MergedLogits:
        merged = MergedLogits(windows, tuple(x.shape[-2:]))
        for b, lg in zip(batches, logits):
            merged.add(b, lg)
        merged._matrices(tuple(rgb.shape[-2:]))  # the low-resolution products (cached for the post)
        return merged

    def rest():  # the rest of predict: checks, resize, normalisation, crops, cosine with the text
        _, net = seg.stages.preprocess(image)
        for b in batches:
            torch.cat([net[..., y1:y2, x1:x2] for y1, y2, x1, x2 in b])
            torch.einsum("bchw,qc->bqhw", feats.float(), seg.stages.text_features())

    with torch.no_grad():
        feats = seg.encoder.dense_features(crops[0])
    seg.predict(image)
    t = {k: [] for k in ("encoder", "predict", "merge", "post", "rest")}
    for _ in range(repeats):
        t["encoder"].append(timed(encoder, device))
        t["predict"].append(timed(lambda: seg.predict(image), device))
        if ratio_only:
            continue
        merged = None

        def run_merge():
            nonlocal merged
            merged = merge()

        t["merge"].append(timed(run_merge, device))
        t["post"].append(timed(lambda merged=merged: seg.stages.mask_from_logits(rgb, x, merged), device))
        t["rest"].append(timed(rest, device))
    with PeakRSS() as mem:
        mask = seg.predict(image)
    same = float("nan") if ratio_only else same_labels(seg, rgb, x, batches, logits, mask)
    med = {k: float(np.median(v)) if v else float("nan") for k, v in t.items()}
    return {
        "benchmark": bench,
        "model": model_name,
        "image": f"{SHAPES[bench][0]}x{SHAPES[bench][1]}",
        "resized": f"{x.shape[-2]}x{x.shape[-1]}",
        "windows": len(windows),
        "queries": logits[0].shape[1],
        "encoder_s": med["encoder"],
        "predict_s": med["predict"],
        "ratio": float(np.median([p / e for p, e in zip(t["predict"], t["encoder"])])),
        "parts": 1 + (med["merge"] + med["post"] + med["rest"]) / med["encoder"],
        "merge": med["merge"] / med["predict"],
        "post": med["post"] / med["predict"],
        "peak_mb": mem.added_mb,
        "same": same,
    }


def same_labels(seg, rgb, x, batches, logits, mask) -> float:
    """The fraction of ``mask`` equal to the labels of the canvas path from the same window logits."""
    canvas = torch.zeros(logits[0].shape[1], *x.shape[-2:], device=x.device)
    count = torch.zeros(1, *x.shape[-2:], device=x.device)
    for b, lg in zip(batches, logits):
        add_windows(canvas, count, b, lg)
    return (seg.stages.mask_from_logits(rgb, x, canvas / count) == mask).double().mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", default="ViT-B-16,ViT-L-14")
    p.add_argument("--benchmarks", default=",".join(SHAPES))
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per row (ViT-B/16)")
    p.add_argument("--large-repeats", type=int, default=2, help="timed repeats per row for ViT-L/14")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least disturbed by other load)")
    p.add_argument("--quick", action="store_true", help="ViT-B/16 only, 3 repeats")
    p.add_argument("--ratio-only", action="store_true", help="only the times and the peak (any checkout's baseline)")
    args = p.parse_args()
    args.ratio_only = args.ratio_only or MergedLogits is None
    if args.quick:
        args.models, args.repeats = "ViT-B-16", 3
    torch.set_num_threads(args.threads)
    benches = args.benchmarks.split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.device}, untrained weights, "
        f"one prompt template; medians of the repeats"
    )
    print(
        "| benchmark | model | image | resized | windows | queries | encoder s | predict s | predict / encoder "
        "| by parts | merge | post | peak MB | same labels |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = sl.load_clip(name, pretrained=None, allow_untrained=True, device=args.device)
        repeats = args.large_repeats if "L" in name.split("-")[1] else args.repeats
        for bench in benches:
            r = row(model, name, bench, args.device, repeats, args.ratio_only)
            print(
                f"| {r['benchmark']} | {r['model']} | {r['image']} | {r['resized']} | {r['windows']} | {r['queries']} "
                f"| {r['encoder_s']:.2f} | {r['predict_s']:.2f} | **{r['ratio']:.3f}** | {r['parts']:.3f} | {r['merge']:.1%} "
                f"| {r['post']:.1%} | {r['peak_mb']:.0f} | {r['same']:.6f} |",
                flush=True,
            )
        del model


if __name__ == "__main__":
    main()

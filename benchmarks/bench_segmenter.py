"""Speed and memory of Segmenter.predict; prints its figures (untrained weights: timings do not depend on them).

    python benchmarks/bench_segmenter.py [--device cuda] [--repeats 3] [--skip-memory]

1. overhead: predict time / bare image-encoder time for the same windows (target <= 1.15 on CPU,
   336x500 image, 21 classes, text embeddings cached);
2. batching: windows in batches vs one window at a time, as the authors' code does (target >= 2x on GPU);
3. memory: peak resident memory of predict on a 4000x3000 image with 171 classes (target < 3 GB on CPU),
   measured in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

import sclip_lib as sl

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
ONE_TEMPLATE = ("a photo of a {}.",)  # text cost is excluded from every figure; one template keeps set-up short


def class_list(n: int) -> list[str]:
    return [f"class number {i}" for i in range(n)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn, device: str, repeats: int) -> float:
    fn()  # warm-up: positional-embedding cache, kernels, allocator
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def overhead(model, device: str, repeats: int) -> None:
    image = np.random.default_rng(0).integers(0, 256, (336, 500, 3), dtype=np.uint8)
    seg = sl.Segmenter(model, class_list(21), "sclip", templates=ONE_TEMPLATE, device=device)
    seg.stages.text_features()  # cached before timing
    _, x = seg.stages.preprocess(image)
    windows = sl.sliding_windows(*x.shape[-2:], seg.settings.crop, seg.settings.stride)
    crops = torch.cat([x[..., y1:y2, x1:x2] for y1, y2, x1, x2 in windows])

    def encoder_only():
        with torch.no_grad(), seg.stages.autocast():
            seg.encoder.dense_features(crops)

    floor = best_time(encoder_only, device, repeats)
    full = best_time(lambda: seg.predict(image), device, repeats)
    print(f"[overhead] {device}: 336x500 image, {len(windows)} windows, 21 classes")
    print(
        f"  bare encoder {floor * 1000:.1f} ms | predict {full * 1000:.1f} ms | ratio {full / floor:.3f} (target <= 1.15)"
    )


def batching(model, device: str, repeats: int) -> None:
    image = np.random.default_rng(1).integers(0, 256, (336, 500, 3), dtype=np.uint8)
    seg = sl.Segmenter(model, class_list(21), "sclip", templates=ONE_TEMPLATE, device=device)
    _, x = seg.stages.preprocess(image)
    seg.stages.text_features()
    results = {}
    for batch_size in (1, 16):
        seg.settings = sl.Settings(batch_size=batch_size)
        results[batch_size] = best_time(lambda: seg.stages.window_logits(x), device, repeats)
    print(
        f"[batching] {device} ({seg.precision}): one window at a time {results[1] * 1000:.1f} ms | "
        f"batches of 16 {results[16] * 1000:.1f} ms | speed-up {results[1] / results[16]:.2f}x"
    )


def memory_child() -> None:
    """Runs in a fresh process: prints peak RSS before and after predict on a 4000x3000 image."""
    model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True)
    seg = sl.Segmenter(model, class_list(171), "sclip", templates=ONE_TEMPLATE, short_side=448)
    seg.stages.text_features()
    image = np.random.default_rng(2).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    start = time.perf_counter()
    mask = seg.predict(image)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"before_gb": before, "peak_gb": peak, "seconds": seconds, "shape": list(mask.shape)}))


def memory() -> None:
    out = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"[memory] cpu: predict on 4000x3000, 171 classes, short side 448: peak RSS {r['peak_gb']:.2f} GB "
        f"(model + text loaded: {r['before_gb']:.2f} GB; target < 3 GB), {r['seconds']:.1f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, untrained ViT-B/16 (timings do not depend on weights)"
    )
    model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True, device=args.device)
    overhead(model, args.device, args.repeats)
    batching(model, args.device, args.repeats)
    if not args.skip_memory and args.device == "cpu":
        memory()


if __name__ == "__main__":
    main()

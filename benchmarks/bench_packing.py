"""Packed windows (``Segmenter.predict_many``) against one image at a time (``Segmenter.predict``); prints images/s.

    python benchmarks/bench_packing.py [--device cuda] [--images 8] [--repeats 2]

Untrained ViT-B/16 (timings do not depend on the weights), one prompt template, text embeddings
computed before the clock starts, images already decoded (uint8 arrays), so the figure is the
segmenter's own throughput. Two cases:

1. VOC21 at the paper's settings on VOC-sized 500x375 images: 448x336 after resizing, 6 windows of
   224, so one image fills 6 of the 16 places of an encoder batch;
2. images that are one window each (336x336 at short side 224, as any whole-image protocol), where
   per-image prediction runs the encoder one window at a time.

Also checks that both give the same masks.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import sclip_lib as sl

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
ONE_TEMPLATE = ("a photo of a {}.",)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_second(fn, n: int, device: torch.device, repeats: int) -> tuple[float, list]:
    """Best of ``repeats`` timed calls of ``fn()`` (a list of ``n`` masks), after one warm-up call."""
    masks = fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return n / best, masks


def compare(seg: sl.Segmenter, images: list[np.ndarray], repeats: int) -> dict:
    """Images/s one at a time and packed, and how many masks are identical."""
    seg.stages.text_features()
    single, a = images_per_second(lambda: [seg.predict(im) for im in images], len(images), seg.device, repeats)
    packed, b = images_per_second(lambda: [m for _, m in seg.predict_many(images)], len(images), seg.device, repeats)
    same = sum(torch.equal(x, y) for x, y in zip(a, b))
    agree = float(np.mean([(x == y).float().mean().item() for x, y in zip(a, b)]))
    return {"single": single, "packed": packed, "identical": same, "n": len(images), "pixel_agreement": agree}


def report(name: str, r: dict) -> None:
    print(
        f"  {name}: one image at a time {r['single']:.2f} images/s | packed {r['packed']:.2f} images/s | "
        f"speed-up {r['packed'] / r['single']:.2f}x | identical masks {r['identical']}/{r['n']}"
        + ("" if r["identical"] == r["n"] else f" (pixel agreement {100 * r['pixel_agreement']:.4f}%)")
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=None, help="default: 8 on CPU, 64 on CUDA")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--model", default="ViT-B-16")
    args = p.parse_args()
    device = torch.device(args.device)
    n = args.images or (64 if device.type == "cuda" else 8)
    model = sl.load_clip(args.model, pretrained=None, allow_untrained=True, device=device)
    rng = np.random.default_rng(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, untrained {args.model}")

    voc = sl.BENCHMARKS["voc21"].segmenter(model, templates=ONE_TEMPLATE, device=device)
    print(f"[packing] {n} images, batch_size {voc.settings.batch_size}, precision {voc.precision}")
    report("VOC21, 500x375 (6 windows each)", compare(voc, [_image(rng, 375, 500) for _ in range(n)], args.repeats))
    small = sl.BENCHMARKS["voc21"].segmenter(model, templates=ONE_TEMPLATE, device=device, short_side=224)
    report(
        "336x336 at short side 224 (1 window each)",
        compare(small, [_image(rng, 336, 336) for _ in range(n)], args.repeats),
    )


def _image(rng, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


if __name__ == "__main__":
    main()

"""Every GPU figure README asks for, in one run (about 5 minutes on a recent GPU); prints them all.

    python benchmarks/gpu_figures.py                 # on a machine with a CUDA GPU
    python benchmarks/gpu_figures.py --quick --device cpu   # a dry run of the code paths, tiny sizes

Untrained ViT-B/16 throughout: timing and memory do not depend on the weights' values. Figures:

1. batched windows vs one window at a time (fp16), and packed images vs one image at a time;
2. images/s per benchmark at the paper's settings through ``sl.evaluate`` (decoding, windows, post-
   processing and metric included; the 80 templates encoded once per benchmark and timed apart), on
   generated images of each benchmark's usual size, GPU utilisation sampled by ``nvidia-smi`` while
   the loop runs; the time for all eight full validation sets and the projection to a T4 by the rule
   printed with it;
3. peak GPU memory (``torch.cuda.max_memory_allocated``) for a Cityscapes image (1024x2048, short side
   560, 19 classes), for 171 classes (COCO-Stuff, 640x480, short side 448) and both at once;
4. fp16 autocast against fp32 on the same images: pixel agreement of the masks and the largest
   difference of a class probability. With untrained weights the logits are nearly uniform, so this
   agreement is a pessimistic figure for trained weights;
5. sharded = one process on this GPU: each image's packed mask with rows 0::2 and 1::2 packed apart
   equals its mask in the one-process order (what makes a sharded mIoU identical).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_evaluate import voc_like, write_hub_copy  # noqa: E402
from bench_packing import compare, report  # noqa: E402
from bench_segmenter import batching  # noqa: E402
from bench_shapes import SHAPES as SIZES  # noqa: E402  (each benchmark's typical image, height x width)

import sclip_lib as sl  # noqa: E402
from sclip_lib.text import _CACHE as text_cache  # noqa: E402

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
os.environ["SCLIP_TEXT_CACHE"] = "0"  # time the text encoding itself, not a read of the on-disk cache
# The projection rule: encoder work is compute bound, so time scales with the inverse of the GPU's
# peak dense FP16 tensor throughput (vendor data sheets, TFLOPS, without sparsity).
PEAK_FP16_TFLOPS = {"T4": 65, "V100": 125, "A10G": 70, "L4": 121, "A100": 312, "H100": 989, "H200": 989}
T4 = PEAK_FP16_TFLOPS["T4"]


class Utilisation:
    """Mean GPU utilisation (%) sampled by ``nvidia-smi`` every 100 ms while the block runs."""

    def __init__(self, index: int) -> None:
        self.index, self.samples, self._proc = index, [], None

    def __enter__(self):
        try:
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "-i",
                    str(self.index),
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "100",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
        except (FileNotFoundError, OSError):
            return self
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            if line.strip().isdigit():
                self.samples.append(int(line))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()

    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a (no nvidia-smi)"


def write_copy(name: str, folder: Path, n: int, size) -> Path:
    """``n`` generated images of ``size`` with masks, as benchmark ``name``'s hub repo stores them, or
    for PASCAL Context (no hub copy) in its original layout. Labels avoid 11, which COCO never holds."""
    bench = sl.BENCHMARKS[name]
    images, masks = voc_like(n, size, values=[v for v in range(21) if v != 11])
    if bench.hub is not None:
        return write_hub_copy(folder / name, name, images, masks)
    root = folder / name
    for sub in ("JPEGImages", "SegmentationClassContext", "ImageSets/SegmentationContext"):
        (root / sub).mkdir(parents=True)
    ids = [f"2008_{i:06d}" for i in range(n)]
    for i, image, mask in zip(ids, images, masks):
        image.save(root / "JPEGImages" / f"{i}.jpg", quality=90)
        mask.save(root / "SegmentationClassContext" / f"{i}.png")
    (root / "ImageSets/SegmentationContext/val.txt").write_text("\n".join(ids) + "\n")
    return root


def batching_figures(model, device, args) -> None:
    print("\n[1] batching")
    if not args.quick:  # bench_segmenter.py's figure, at full size
        batching(model, str(device), 3)
    rng = np.random.default_rng(1)
    h, w = (94, 125) if args.quick else SIZES["voc21"]
    voc = sl.BENCHMARKS["voc21"].segmenter(model, device=device, templates=("a photo of a {}.",))
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.images)]
    report(f"packed images vs one at a time, VOC21 {w}x{h}", compare(voc, images, 1 if args.quick else 2))


def throughput(model, device, args) -> None:
    print("\n[2] images/s per benchmark, paper's settings, packed windows, sl.evaluate on generated images")
    total_seconds, rows = 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in SIZES.items():
            bench = sl.BENCHMARKS[name]
            size = (size[0] // 4, size[1] // 4) if args.quick else size
            n = max(2, args.images // (8 if name == "cityscapes" else 1))
            source = write_copy(name, Path(tmp), n, size)
            templates = ("a photo of a {}.",) if args.quick else sl.OPENAI_IMAGENET_TEMPLATES
            warm = bench.segmenter(model, device=device, templates=templates)
            sl.evaluate(warm, sl.load_benchmark(name, limit=2, source=source), progress=False)
            text_cache.pop(model, None)  # the timed run encodes the class names again, warm
            seg = bench.segmenter(model, device=device, templates=templates)
            data = sl.load_benchmark(name, source=source, workers=args.workers)
            with Utilisation(device.index or 0) as util:
                r = sl.evaluate(seg, data, progress=False, workers=args.workers)
            full = bench.num_images / r.images_per_second + r.text_seconds
            total_seconds += full
            rows.append(name)
            print(
                f"  {bench.column:6s} {size[1]}x{size[0]} short side {seg.settings.short_side}, {bench.num_classes} "
                f"classes: {r.images_per_second:7.2f} images/s, GPU utilisation {util.mean()}, text "
                f"{r.text_seconds:.2f} s ({len(templates)} templates); full val ({bench.num_images} images): "
                f"{full / 60:.1f} min"
            )
    print(
        f"  all 8 full validation sets ({sum(b.num_images for b in sl.BENCHMARKS.values())} images): "
        f"{total_seconds / 60:.1f} min measured-rate x images on this device"
    )
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or next((v for k, v in PEAK_FP16_TFLOPS.items() if k in gpu.upper()), None)
        if peak is None:
            print(f"  T4 projection: no peak FP16 figure known for {gpu!r}; pass --peak-tflops (data sheet, dense)")
        else:
            print(
                f"  T4 projection (rule: time x {peak} / {T4}, the ratio of peak dense FP16 tensor TFLOPS, "
                f"{gpu} / T4; assumes the encoder is compute bound): {total_seconds * peak / T4 / 60:.1f} min "
                f"(target < 30 min)"
            )


def memory(model, device, args) -> None:
    print("\n[3] peak GPU memory of predict (max_memory_allocated), text embeddings cached")
    rng = np.random.default_rng(3)
    city = rng.integers(0, 256, (1024, 2048, 3), dtype=np.uint8)
    stuff = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    cases = [
        ("Cityscapes 1024x2048, short side 560, 19 classes", "cityscapes", city, {}),
        ("COCO-Stuff 640x480, short side 448, 171 classes", "coco_stuff", stuff, {}),
        ("1024x2048 at short side 560 with 171 classes", "coco_stuff", city, {"short_side": 560}),
    ]
    for label, name, image, extra in cases:
        seg = sl.BENCHMARKS[name].segmenter(model, device=device, templates=("a photo of a {}.",), **extra)
        seg.stages.text_features()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        seg.predict(image)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(device)
        print(
            f"  {label}: peak {peak / 2**30:.2f} GiB ({(peak - base) / 2**30:.2f} GiB above the loaded model "
            f"and text, {base / 2**30:.2f} GiB)"
        )


def precision(model, device, args) -> None:
    print("\n[4] fp16 autocast vs fp32 on the same images (untrained weights: a pessimistic agreement)")
    rng = np.random.default_rng(4)
    for name in ("voc21", "coco_stuff"):
        h, w = (94, 125) if args.quick else SIZES[name]
        images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.precision_images)]
        segs = {
            p: sl.BENCHMARKS[name].segmenter(model, device=device, precision=p, templates=("a photo of a {}.",))
            for p in ("fp16", "fp32")
        }
        agree, pixels, worst = 0, 0, 0.0
        for im in images:
            m16, m32 = segs["fp16"].predict(im), segs["fp32"].predict(im)
            agree += int((m16 == m32).sum())
            pixels += m16.numel()
            worst = max(worst, float((segs["fp16"].probabilities(im) - segs["fp32"].probabilities(im)).abs().max()))
        print(
            f"  {sl.BENCHMARKS[name].column}: {len(images)} images {w}x{h}: pixel agreement "
            f"{100 * agree / pixels:.4f}% (target >= 99.9%), largest probability difference {worst:.2e}"
        )


def sharded_identity(model, device, args) -> None:
    print("\n[5] sharded = one process: masks of rows 0::2 and 1::2 packed apart vs all rows packed together")
    rng = np.random.default_rng(5)
    h, w = (94, 125) if args.quick else SIZES["voc21"]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.images)]
    seg = sl.BENCHMARKS["voc21"].segmenter(model, device=device, templates=("a photo of a {}.",))
    together = [m for _, m in seg.predict_many(images)]
    apart = [None] * len(images)
    for rank in range(2):
        for i, m in seg.predict_many(range(rank, len(images), 2), lambda i: images[i]):
            apart[i] = m
    same = sum(torch.equal(a, b) for a, b in zip(together, apart))
    print(f"  identical masks: {same}/{len(images)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--images", type=int, default=48, help="generated images per benchmark (Cityscapes: 1/8)")
    p.add_argument("--precision-images", type=int, default=8)
    p.add_argument("--workers", type=int, default=4, help="decoding threads")
    p.add_argument("--peak-tflops", type=float, default=None, help="this GPU's dense FP16 tensor TFLOPS")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one template: check the code paths")
    p.add_argument("--model", default="ViT-B-16", help="open_clip model (untrained); the figures are ViT-B-16's")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU here; run on a GPU machine, or --quick --device cpu for a dry run")
    if args.quick:
        args.images, args.precision_images = min(args.images, 4), min(args.precision_images, 2)
    start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {device} ({name}), torch {torch.__version__}, sclip_lib {sl.__version__}, untrained {args.model}"
        + (" -- QUICK DRY RUN: tiny sizes, not figures" if args.quick else "")
    )
    model = sl.load_clip(args.model, pretrained=None, allow_untrained=True, device=device)

    sections = [batching_figures, throughput, memory, precision, sharded_identity]
    if device.type != "cuda":
        sections.remove(memory)
    for section in sections:
        try:
            section(model, device, args)
        except Exception:  # one run on a lent GPU: a failed figure must not cost the others
            print("  FAILED:")
            traceback.print_exc(file=sys.stdout)
    print(f"\n(all figures in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""CPU cost of the real-mode book at the chapters' full image counts, from measured unit costs; prints figures.

    python benchmarks/bench_book_real.py [--images 100]

A full real-mode build runs for hours on a CPU, so it is priced from what it is made of, each part timed
here in CPU seconds (process time, so other load on the machine does not inflate it): text embeddings
with all 80 prompt templates per class name, and one image of each benchmark's typical size through its
segmenter (untrained weights: the cost does not depend on their values). Chapters 4, 7 and 8 are
counted from their loops at their own image counts (chapter 4's ablations: 10 runs of 50 VOC21 images; chapter 7:
`IMAGES` per benchmark plus its protocol ablation, 4 runs on VOC21 and COCO-Object; chapter 8: 5 attentions,
the reproduction runs, the residual/MLP ablation of 8 variants on 3 backbones at 50 VOC20 images, PAMR);
the rest does not depend on the image counts and is timed by the CI build itself. Wall time on a runner is
about CPU time / cores used.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import sclip_lib as sl
from sclip_lib.text import OPENAI_IMAGENET_TEMPLATES

warnings.filterwarnings("ignore")
SIZES = {"voc": (375, 500), "coco": (480, 640), "cityscapes": (1024, 2048), "ade20k": (512, 683)}  # (h, w)
CHAPTER7 = ["voc21", "voc20", "coco_object", "coco_stuff", "cityscapes", "ade20k"]
ABLATION_IMAGES = 50  # chapter 4: VOC21 images per ablation row
BACKBONE_IMAGES = 50  # chapter 8: VOC20 images per run of the residual/MLP ablation (3 backbones x 8)


def cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def text_cost(model, names: int) -> float:
    """CPU seconds to embed ``names`` class names with 80 templates (measured on 4, scaled)."""
    sample = [f"probe class {i} {time.time_ns()}" for i in range(4)]
    return cpu(lambda: sl.text_embeddings(model, sample, tuple(OPENAI_IMAGENET_TEMPLATES))) / 4 * names


def image_cost(model, bench: str, attention: str = "sclip", **kw) -> float:
    b = sl.BENCHMARKS[bench]
    seg = b.segmenter(model, attention, templates=("a photo of a {}.",), **kw)
    image = np.random.default_rng(0).integers(0, 256, (*SIZES[b.layout], 3), dtype=np.uint8)
    seg.predict(image)  # text embeddings and warm-up outside the clock
    return cpu(lambda: seg.predict(image))


def names(bench: str) -> int:
    b = sl.BENCHMARKS[bench]
    lines = b.class_lines
    return sum(len(line.split(",")) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images per evaluation (the chapters' default)")
    n = parser.parse_args().images
    torch.set_grad_enabled(False)
    b16 = sl.load_clip("ViT-B-16", None, allow_untrained=True)
    per_name_b16 = text_cost(b16, 1)
    per_image = {b: image_cost(b16, b) for b in CHAPTER7}
    for b in CHAPTER7:
        print(
            f"ViT-B-16 {b:12s} {per_image[b]:6.2f} CPU s/image, text {names(b) * per_name_b16:7.0f} CPU s ({names(b)} names x 80)"
        )
    ch7 = sum(names(b) * per_name_b16 + (n + 3 * (b == "voc21")) * per_image[b] for b in CHAPTER7)
    ch7 += 4 * n * (per_image["voc21"] + per_image["coco_object"])  # protocol ablation: 4 changed runs each
    ch4 = 10 * ABLATION_IMAGES * per_image["voc21"]  # projection, temperature, sum/mean, final blocks

    pamr = image_cost(b16, "voc21", pamr=True)
    b32 = sl.load_clip("ViT-B-32", None, allow_untrained=True)
    l14 = sl.load_clip("ViT-L-14", None, allow_untrained=True)
    voc20 = {"ViT-B-16": per_image["voc20"], "ViT-B-32": image_cost(b32, "voc20"), "ViT-L-14": image_cost(l14, "voc20")}
    text_l14 = text_cost(l14, names("voc20"))
    print(
        f"ViT-B-32 voc20 {voc20['ViT-B-32']:.2f}, ViT-L-14 voc20 {voc20['ViT-L-14']:.2f}, "
        f"ViT-B-16 voc21 + PAMR {pamr:.2f} CPU s/image; ViT-L-14 text for voc20 {text_l14:.0f} CPU s"
    )
    ch8 = (
        names("voc21") * per_name_b16
        + 5 * n * per_image["voc21"]  # five attentions on VOC21 (controlled)
        + 3 * n * per_image["voc21"]
        + n * pamr  # reproduction: ClearCLIP, NACLIP with and without PAMR (approx.)
        + sum(8 * BACKBONE_IMAGES * c for c in voc20.values())
        + 3 * names("voc20") * per_name_b16
        + text_l14
        + n * (per_image["voc21"] + pamr)  # PAMR off and on
    )
    print(f"chapter 4: {ch4 / 60:6.0f} CPU-minutes ({ABLATION_IMAGES} images per ablation row)")
    for label, s in (("chapter 7", ch7), ("chapter 8", ch8), ("chapters 7 + 8", ch7 + ch8)):
        print(
            f"{label}: {s / 60:6.0f} CPU-minutes at {n} images per evaluation "
            f"(~{s / 60 / 2:.0f} min on 2 cores, ~{s / 60 / 4:.0f} min on 4)"
        )


if __name__ == "__main__":
    main()

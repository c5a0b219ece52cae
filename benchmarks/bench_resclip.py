"""Predict time of ResCLIP's plug-ins against plain SCLIP; prints its figures (untrained weights).

    python benchmarks/bench_resclip.py [--device cuda] [--repeats 3] [--size 336x500] [--classes 21]

Targets (issue 13): SCLIP + RCS <= 1.1x and SCLIP + RCS + SFR <= 1.3x of SCLIP's predict time, same
image, same windows, same settings. RCS reads blocks 5..8 in the one forward pass; SFR re-runs only the
last block, after a first pass whose window logits ResCLIP refines with PAMR (10 iterations) to build
its coarse segmentation. The variants are timed in turn, repeat after repeat, so that a change of
machine load hits them alike; the best time of each is reported: this process's CPU time on a CPU
(``--threads 1``: other load on a shared machine slows a thread but does not bill it), wall time on a GPU.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from bench_segmenter import ONE_TEMPLATE, class_list, sync

import sclip_lib as sl

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
VARIANTS = ["sclip", "sclip+rcs", "sclip+sfr", "sclip+rcs+sfr", "naclip", "naclip+rcs+sfr"]
TARGETS = {"sclip+rcs": 1.1, "sclip+rcs+sfr": 1.3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--size", default="336x500", help="image height x width (the Segmenter resizes its short side to 336)"
    )
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; must include the base of each")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.device == "cpu" else time.perf_counter
    variants = args.variants.split(",")
    h, w = (int(v) for v in args.size.split("x"))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}, untrained ViT-B/16 "
        f"(timings do not depend on the weights); {h}x{w} image, {args.classes} classes"
    )
    model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True, device=args.device)
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    segs = {
        v: sl.Segmenter(model, class_list(args.classes), v, templates=ONE_TEMPLATE, device=args.device)
        for v in variants
    }
    for seg in segs.values():
        seg.stages.text_features()  # cached before timing
        seg.predict(image)  # warm-up
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v, seg in segs.items():
            sync(args.device)
            start = clock()
            seg.predict(image)
            sync(args.device)
            times[v].append(clock() - start)
    for v in variants:
        best = min(times[v])
        ref = min(times[v.split("+")[0]])
        target = f" (target <= {TARGETS[v]})" if v in TARGETS else ""
        print(f"  {v:16s} best {best * 1000:9.1f} ms | ratio to {v.split('+')[0]} {best / ref:.3f}{target}")


if __name__ == "__main__":
    main()

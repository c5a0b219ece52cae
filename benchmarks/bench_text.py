"""Text-encoding speed, and the memory of ``probabilities`` vs ``predict``; prints its figures.

    python benchmarks/bench_text.py [--skip-before] [--skip-memory]

1. COCO-Stuff's 171 class names (one query per name) x the 80 OpenAI templates: open_clip's
   ``build_zero_shot_classifier`` with 4 classes per batch (how sclip_lib encoded them before) vs
   ``sl.text_embeddings`` (prompts batched, each batch cut to its longest prompt); target >= 3x on CPU;
2. 2000 class names x 1 template with ``sl.text_embeddings``: target < 60 s on this CPU (before: the
   same 4-classes-per-batch path, timed on the first 200 names and scaled up);
3. peak resident memory above the loaded model of ``predict`` and ``probabilities`` (float32 and
   float16) on a 2000x1500 image with 100 classes, each in a fresh process.

The disk cache is off throughout (``cache=False``): these are encoding times. Untrained ViT-B/16:
timings do not depend on the weights' values.
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
import open_clip
import torch

import sclip_lib as sl

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")


class Timer:
    """Wall time and CPU time (all threads) of a block; on a shared, busy machine the CPU time is the
    steadier figure, and wall time on an idle machine is about CPU time / threads."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def before(model, names, templates) -> Timer:
    """The encoding as it was: open_clip's classifier builder, 4 classes per call, 77 positions each."""
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    with Timer() as t, torch.no_grad():
        open_clip.build_zero_shot_classifier(model, tokenizer, names, templates, num_classes_per_batch=4)
    return t


def after(model, names, templates) -> Timer:
    sl.text._CACHE.pop(model, None)
    with Timer() as t:
        sl.text_embeddings(model, names, templates, cache=False, progress=False)
    return t


def speed(model, skip_before: bool, num_templates: int, num_before: int) -> None:
    stuff = [q.strip() for c in sl.BENCHMARKS["coco_stuff"].class_names for q in c.split(",")][:171]
    templates = sl.OPENAI_IMAGENET_TEMPLATES[:num_templates]
    new = after(model, stuff, templates)
    line = f"[text] 171 COCO-Stuff names x {len(templates)} templates: after {new}"
    if not skip_before:
        old = before(model, stuff, templates)
        line += f" | before {old} | speed-up {old.cpu / new.cpu:.2f}x in CPU time (target >= 3x)"
    print(line, flush=True)
    many = [f"class number {i} of a long list" for i in range(2000)]
    new = after(model, many, ("a photo of a {}.",))
    line = f"[text] 2000 names x 1 template: after {new} (target < 60 s)"
    if not skip_before:
        old = before(model, many[:num_before], ("a photo of a {}.",))
        line += f" | before, {num_before} names timed, x{2000 / num_before:g}: {old.cpu * 2000 / num_before:.0f} s CPU"
    print(line, flush=True)


def memory_child(what: str) -> None:
    """In a fresh process: the peak RSS that ``what`` adds on a 2000x1500 image with 100 classes."""
    model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True)
    seg = sl.Segmenter(model, [f"class {i}" for i in range(100)], templates=("a photo of a {}.",), short_side=224)
    seg.stages.text_features()
    image = np.random.default_rng(0).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    seg.predict(np.ascontiguousarray(image[:300, :400]))  # warm-up at a small size (allocator, caches)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    if what == "predict":
        out = seg.predict(image)
    elif what == "float16":
        out = seg.probabilities(image, dtype=torch.float16)
    else:
        out = seg.probabilities(image)  # float32, the default (and the only choice before)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"added_gb": peak - base, "output_gb": out.numel() * out.element_size() / 1024**3}))


def memory() -> None:
    for what in ("predict", "float32", "float16"):
        run = subprocess.run(
            [sys.executable, __file__, "--memory-child", what], capture_output=True, text=True, check=True
        )
        r = json.loads(run.stdout.strip().splitlines()[-1])
        label = "predict" if what == "predict" else f"probabilities({what})"
        print(
            f"[memory] 2000x1500, 100 classes, {label}: +{r['added_gb']:.2f} GB peak RSS "
            f"(output itself {r['output_gb']:.2f} GB)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skip-before", action="store_true", help="time only the new path")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--templates", type=int, default=80, help="templates for the 171-name figure (default all 80)")
    p.add_argument("--before-names", type=int, default=200, help="names timed for the old 2000 x 1 figure")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, untrained ViT-B/16", flush=True)
    if not args.skip_speed:
        model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True)
        speed(model, args.skip_before, args.templates, args.before_names)
    if not args.skip_memory:
        memory()


if __name__ == "__main__":
    main()

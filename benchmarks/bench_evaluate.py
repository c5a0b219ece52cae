"""Evaluation throughput through the full ``sl.evaluate`` path; prints its figures.

    python benchmarks/bench_evaluate.py [--device cuda] [--images 8] [--workers 2]

An untrained ViT-B/16 (timings do not depend on the weights) evaluates VOC21 on generated VOC-sized
images (500x375 JPEG, masks as P-mode PNG) written as a local copy in the hub repo's parquet layout,
so decoding, label conversion, windows, post-processing and the metric are all in the timing.
ONE prompt template is used and the text embeddings are computed before the clock starts: text cost
is a one-off per benchmark, not per image.

Figures: images per second, and the share of the loop's wall time spent outside the image encoder
(``DenseEncoder.dense_features`` timed with a wrapper; target under 15%).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

import sclip_lib as sl

warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
ONE_TEMPLATE = ("a photo of a {}.",)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def voc_like(n: int, size=(375, 500), values=None) -> tuple[list[Image.Image], list[Image.Image]]:
    """``n`` smooth random images and blocky P-mode masks of label ``values`` (default VOC's 0..20)."""
    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(n):
        small = rng.integers(0, 256, (size[0] // 25, size[1] // 25, 3), dtype=np.uint8)
        images.append(Image.fromarray(small).resize(size[::-1], Image.BILINEAR))  # smooth: JPEG-like sizes
        shape = (size[0] // 25 + 1, size[1] // 25 + 1)
        blocks = rng.integers(0, 21, shape) if values is None else rng.choice(values, shape)
        labels = np.kron(blocks, np.ones((25, 25)))
        mask = Image.fromarray(labels[: size[0], : size[1]].astype(np.uint8), mode="P")
        mask.putpalette([(37 * i) % 256 for i in range(768)])
        masks.append(mask)
    return images, masks


def write_voc_copy(folder: Path, n: int, size=(375, 500)) -> Path:
    """``n`` VOC-sized images with blocky masks, in nateraw/pascal-voc-2012's layout (data/val-*.parquet)."""
    return write_hub_copy(folder, "voc21", *voc_like(n, size))


def write_hub_copy(folder: Path, name: str, images: list, masks: list) -> Path:
    """Images (JPEG) and masks in benchmark ``name``'s hub repo layout: its parquet path and columns."""
    hub = sl.BENCHMARKS[name].hub
    path = folder / hub.data_files.replace("*", "00000-of-00001" if "-*" in hub.data_files else "0000")
    path.parent.mkdir(parents=True)
    features = datasets.Features({hub.image_column: datasets.Image(), hub.mask_column: datasets.Image()})
    jpegs = [{"bytes": _jpeg(im), "path": None} for im in images]
    datasets.Dataset.from_dict({hub.image_column: jpegs, hub.mask_column: masks}, features=features).to_parquet(path)
    return folder


def _jpeg(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=None, help="default: 8 on CPU, 64 on CUDA")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    n = args.images or (64 if device.type == "cuda" else 8)

    model = sl.load_clip("ViT-B-16", pretrained=None, allow_untrained=True, device=device)
    seg = sl.BENCHMARKS["voc21"].segmenter(model, "sclip", templates=ONE_TEMPLATE, device=device)
    seg.stages.text_features()

    encoder_seconds = 0.0
    inner = seg.encoder.dense_features

    def timed(images: torch.Tensor) -> torch.Tensor:
        nonlocal encoder_seconds
        sync(device)
        start = time.perf_counter()
        out = inner(images)
        sync(device)
        encoder_seconds += time.perf_counter() - start
        return out

    seg.encoder.dense_features = timed  # instance attribute: only this segmenter is timed

    with tempfile.TemporaryDirectory() as tmp:
        source = write_voc_copy(Path(tmp), n)
        sl.evaluate(seg, sl.load_benchmark("voc21", limit=2, source=source), progress=False)  # warm-up
        encoder_seconds = 0.0
        data = sl.load_benchmark("voc21", source=source, workers=args.workers)
        result = sl.evaluate(seg, data, progress=False)

    loop = result.seconds_per_image * result.num_images
    outside = 1 - encoder_seconds / loop
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch threads: {torch.get_num_threads()}, precision: {seg.precision}, decode workers: {args.workers}"
    )
    print(
        f"VOC21 settings (short side {seg.settings.short_side}, 500x375 -> 448x336, 6 windows of 224), "
        f"{result.num_images} images, one template, untrained ViT-B/16"
    )
    print(f"throughput: {result.images_per_second:.2f} images/s ({1000 * result.seconds_per_image:.0f} ms per image)")
    print(
        f"image encoder: {1000 * encoder_seconds / result.num_images:.0f} ms per image; "
        f"outside the encoder: {100 * outside:.1f}% of the loop (target < 15%)"
    )


if __name__ == "__main__":
    main()

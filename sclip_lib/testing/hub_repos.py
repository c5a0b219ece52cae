"""The repos the local hub (``hub.py``) serves, built from what the project itself knows.

- Weights: for each model, the repo id and file name that open_clip asks the hub for with the ``openai``
  tag (read from ``open_clip.get_pretrained_cfg``), holding seeded random weights as an open_clip state
  dict, in safetensors (the file open_clip tries first) or as the ``.bin`` it falls back to.
- Benchmarks: every hub repo of the registry (``sclip_lib.evaluation.registry``), at the revision it names,
  in its layout (``data_files``, ``siblings``), columns, ``Image`` features and mask mode; rows come from
  the real samples of ``$SCLIP_SAMPLES_DIR`` (:mod:`sclip_lib.testing.samples`) where present and are synthetic after that
  (and for Cityscapes, whose licence forbids copies). Main-branch repos get the README front matter that
  ``push_to_hub`` writes; parquet-converted revisions, like the hub's, have none.

Untrained weights and placeholder images: the code paths are real, the numbers are not.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .hub import revision_folder
from .samples import samples_folder

__all__ = ["WEIGHTS_SEED", "weights_repo", "build_weights", "build_benchmark_repos", "build_hub"]

WEIGHTS_SEED = 1234  # differs from load_clip's UNTRAINED_SEED, so served weights are told apart from untrained
# (width, height) of synthetic images: each benchmark's typical size, or a small one for quick tests
_SIZES = {"voc": (500, 375), "coco": (640, 480), "cityscapes": (2048, 1024), "ade20k": (683, 512)}
_SMALL = {"voc": (64, 48), "coco": (64, 48), "cityscapes": (128, 64), "ade20k": (68, 51)}
_SIBLING_ROWS = 2


# -- weights ------------------------------------------------------------------------------------------
def weights_repo(model: str, tag: str = "openai", fmt: str = "safetensors") -> tuple[str, str]:
    """(repo id, file name) that open_clip downloads for ``model``/``tag`` from the hub."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    hf = open_clip.get_pretrained_cfg(model, tag).get("hf_hub", "")
    if not hf:
        raise ValueError(f"open_clip has no hub repo for {model} / {tag}")
    repo, filename = os.path.split(hf)
    filename = filename or HF_WEIGHTS_NAME
    if fmt == "safetensors" and filename == HF_WEIGHTS_NAME:
        filename = HF_SAFE_WEIGHTS_NAME  # open_clip looks for this first (pretrained._get_safe_alternatives)
    elif fmt == "safetensors" and filename.endswith((".bin", ".pth")):
        filename = filename[:-4] + ".safetensors"
    return repo, filename


def build_weights(
    root: Path, model: str, tag: str = "openai", fmt: str = "safetensors", seed: int = WEIGHTS_SEED
) -> Path:
    """Seeded random weights for ``model`` where open_clip looks for ``tag``'s, as an open_clip state dict."""
    import open_clip
    import torch

    repo, filename = weights_repo(model, tag, fmt)
    path = Path(root) / "models" / repo / "main" / filename
    if path.is_file():
        return path
    logging.disable(logging.WARNING)  # open_clip warns that the model is randomly initialised: that is the point
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            state = open_clip.create_model(model, pretrained=None).state_dict()
    finally:
        logging.disable(logging.NOTSET)
    state = {k: v.contiguous() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if filename.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, str(tmp))
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path


# -- benchmarks ---------------------------------------------------------------------------------------
def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _synthetic(rng: np.random.Generator, size: tuple[int, int], values: list[int], mode: str) -> tuple[bytes, bytes]:
    """A blocky image and a mask of the same size whose blocks hold ``values`` (encoded images)."""
    w, h = size
    gh, gw = max(h // 16, 1), max(w // 16, 1)
    cells = rng.integers(0, len(values), (gh, gw))
    mask = np.asarray(values, np.uint8)[cells].repeat(-(-h // gh), 0).repeat(-(-w // gw), 1)[:h, :w]
    colours = rng.integers(0, 256, (len(values), 3), dtype=np.uint8)
    image = colours[cells].repeat(-(-h // gh), 0).repeat(-(-w // gw), 1)[:h, :w]
    image = np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    m = Image.fromarray(mask)
    if mode == "P":  # VOC's palette PNG: the indices are kept, colours come with them
        from ..viz import colorize

        m = colorize(mask)
    elif mode == "RGB":
        m = Image.fromarray(colours[cells].repeat(-(-h // gh), 0).repeat(-(-w // gw), 1)[:h, :w])
    return _png(Image.fromarray(image)), _png(m)


def _real_rows(layout: str, shared: Path | None) -> list[tuple[bytes, bytes]]:
    """(image, mask) bytes of the real samples for a layout, in the hub copy's mask encoding."""
    if shared is None or not shared.is_dir():
        return []
    if layout == "voc" and (shared / "voc2012").is_dir():
        ids = sorted((p.name[: -len("_image.png")] for p in (shared / "voc2012").glob("*_image.png")), key=int)
        return [
            ((shared / "voc2012" / f"{i}_image.png").read_bytes(), (shared / "voc2012" / f"{i}_label.png").read_bytes())
            for i in ids
        ]
    if layout == "ade20k" and (shared / "ade20k").is_dir():
        names = sorted(p.stem for p in (shared / "ade20k" / "images").glob("*.jpg"))
        return [
            (
                (shared / "ade20k" / "images" / f"{n}.jpg").read_bytes(),
                (shared / "ade20k" / "annotations" / f"{n}.png").read_bytes(),
            )
            for n in names
        ]
    if layout == "coco" and (shared / "coco" / "000000039769.png").is_file():
        from ..evaluation.labels import coco_stuff_171

        approx = np.asarray(Image.open(shared / "coco" / "000000039769_cocostuff171_APPROX_from_panoptic.png"))
        inverse = np.full(256, 255, np.uint8)  # train id -> stuff-thing map value (category id - 1)
        for value, train in enumerate(coco_stuff_171().table):
            if 0 <= train < 255:
                inverse[train] = value
        return [((shared / "coco" / "000000039769.png").read_bytes(), _png(Image.fromarray(inverse[approx])))]
    return []  # Cityscapes: no samples may be copied


def _split_of(path: str) -> str:
    """The split a parquet path holds: its folder (``<config>/<split>/0000.parquet``) or its name prefix."""
    parts = path.split("/")
    return parts[-2] if len(parts) >= 3 else parts[-1].split("-")[0]


def _file_for(pattern: str) -> str:
    """A file name that the repo's glob matches, named as the hub's writers name them."""
    return pattern.replace("*", "00000-of-00001" if "-*" in pattern else "0000")


def _write_parquet(path: Path, hub, rows: list[tuple[bytes, bytes]]) -> None:
    import datasets

    features = datasets.Features({hub.image_column: datasets.Image(), hub.mask_column: datasets.Image()})
    data = {
        hub.image_column: [{"bytes": img, "path": None} for img, _ in rows],
        hub.mask_column: [{"bytes": mask, "path": None} for _, mask in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))


def _card(hub, splits: dict[str, tuple[str, int, int]]) -> str:
    """README front matter as ``push_to_hub`` writes it: features, splits and the default config's files."""
    lines = ["---", "dataset_info:", "  features:"]
    for col in (hub.image_column, hub.mask_column):
        lines += [f"  - name: {col}", "    dtype: image"]
    lines.append("  splits:")
    for split, (_, n, size) in splits.items():
        lines += [f"  - name: {split}", f"    num_bytes: {size}", f"    num_examples: {n}"]
    lines += ["configs:", "- config_name: default", "  data_files:"]
    for split, (pattern, _, _) in splits.items():
        lines += [
            f"  - split: {split}",
            f"    path: {pattern.rsplit('.', 1)[0] if pattern.endswith('*.parquet') else pattern}",
        ]
    lines += ["---", "", f"Local stand-in for {hub.repo}, built by sclip_lib.testing.hub_repos: placeholder data.", ""]
    return "\n".join(lines)


def build_benchmark_repos(
    root: Path, rows: int = 4, small_images: bool = True, shared: Path | None = None
) -> dict[str, Path]:
    """Every benchmark repo of the registry under ``root/datasets``; returns {repo id: revision folder}.
    Rows come from the real samples in ``shared`` (default ``$SCLIP_SAMPLES_DIR``) where present."""
    from ..evaluation.registry import BENCHMARKS

    shared = samples_folder() if shared is None else shared

    built: dict[str, Path] = {}
    for bench in BENCHMARKS.values():
        hub = bench.hub
        if hub is None or hub.repo in built:
            continue
        folder = Path(root) / "datasets" / hub.repo / revision_folder(hub.revision or "main")
        if folder.exists():
            shutil.rmtree(folder)
        rng = np.random.default_rng(zlib.crc32(hub.repo.encode()))
        size = (_SMALL if small_images else _SIZES)[bench.layout]
        values = [v for v in bench.label_map.valid_values if v != 255] or [0]
        real = _real_rows(bench.layout, shared)[:rows]
        split_rows = real + [_synthetic(rng, size, values, hub.mask_mode) for _ in range(rows - len(real))]
        path = folder / _file_for(hub.data_files)
        _write_parquet(path, hub, split_rows)
        splits = {hub.split: (hub.data_files, len(split_rows), path.stat().st_size)}
        for sibling in hub.siblings:  # other splits and configs: decoys a too-wide file pattern would pick up
            mode = "RGB" if "instance" in sibling else hub.mask_mode
            _write_parquet(folder / sibling, hub, [_synthetic(rng, size, values, mode) for _ in range(_SIBLING_ROWS)])
            splits.setdefault(_split_of(sibling), (sibling, _SIBLING_ROWS, (folder / sibling).stat().st_size))
        (folder / ".gitattributes").write_text("*.parquet filter=lfs diff=lfs merge=lfs -text\n")
        if hub.revision is None:  # a main branch written by push_to_hub carries the card
            (folder / "README.md").write_text(_card(hub, splits))
        built[hub.repo] = folder
    if "zhoubolei/scene_parse_150" in built:  # its main branch: the card and the loading script only
        main = Path(root) / "datasets" / "zhoubolei" / "scene_parse_150" / "main"
        main.mkdir(parents=True, exist_ok=True)
        (main / "README.md").write_text("---\nlicense: bsd-3-clause\n---\nScene parsing (script dataset).\n")
        (main / "scene_parse_150.py").write_text("# the dataset's loading script lives here on the hub\n")
    return built


def build_hub(
    root: str | os.PathLike,
    models=("ViT-B-16", "ViT-B-32"),
    rows: int = 4,
    small_images: bool = True,
    shared: Path | None = None,
    formats: dict[str, str] | None = None,
) -> Path:
    """Weights for ``models`` and every benchmark repo under ``root``; skipped when already built alike."""
    root = Path(root)
    formats = formats or {}
    stamp = root / ".sclip-local-hub.json"
    spec = {
        "models": {m: formats.get(m, "safetensors") for m in models},
        "rows": rows,
        "small_images": small_images,
        "shared": str(shared) if shared and shared.is_dir() else None,
    }
    if stamp.is_file() and json.loads(stamp.read_text()) == spec:
        return root
    root.mkdir(parents=True, exist_ok=True)
    for model, fmt in spec["models"].items():
        build_weights(root, model, fmt=fmt)
    build_benchmark_repos(root, rows=rows, small_images=small_images, shared=shared)
    stamp.write_text(json.dumps(spec))
    return root

"""Explorers: a model's attention and similarity maps, computed once, explored in the browser without a kernel.

Python computes everything the reader can ask for, per image, and stores it compactly (float16):

- ``attention``: the heads-averaged attention rows of every patch query in every block, under vanilla
  attention and under CSA applied to that block's own q and k: ``(layers, 2, patches, 1 + patches)``,
  CLS as column 0 (as :meth:`DenseEncoder.attention_maps` returns them, heads averaged);
- ``features``: the dense, L2-normalised patch features of vanilla CLIP and SCLIP: ``(2, dim, patches)``;
- ``vocabulary``: the text embeddings of a fixed vocabulary (``explorer_static/vocabulary.txt``,
  the eight benchmarks' class names, ImageNet's and common nouns): ``(words, dim)``.

A plain JavaScript file (``explorer_static/explorer.js``, no dependencies) does the rest in the page:
it reads the float16 arrays, computes cosines (dot products), argmax segmentations and the spatial
invariance of each block, and draws them. The same HTML works on the static site, where the arrays are
files next to the page (:meth:`ExplorerData.save`), and in Jupyter or Colab, where they are inlined::

    data = explorer.compute(model, {"cat": image})
    explorer.Explorer(data, "attention")                      # an output cell: hover a patch
    explorer.Explorer(data, "similarity", words="cat; wall")  # type words
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from ..attention import AttentionContext, attention_weights
from ..encoder import DenseEncoder, _project_qkv
from ..images import as_image_tensor, normalize, resize_to_fit
from ..models import weights_info
from ..text import Template, text_embeddings

__all__ = [
    "BUDGET_BYTES",
    "DEFAULT_TEMPLATES",
    "VARIANTS",
    "Explorer",
    "ExplorerData",
    "compute",
    "crop_image",
    "image_arrays",
    "vocabulary",
]

STATIC = Path(__file__).with_name("explorer_static")
FORMAT = "sclip-explorer/1"
VARIANTS = ("vanilla", "sclip")  # vanilla attention and CSA, in this order in every array
LABELS = {"vanilla": "vanilla CLIP", "sclip": "SCLIP (CSA)"}
# One template: ~2,550 prompts, embedded once per build (and kept in the text cache); all 80 templates
# would be 80 times that.
DEFAULT_TEMPLATES: tuple[Template, ...] = ("a photo of a {}.",)
BUDGET_BYTES = 8_000_000  # all explorer files of one chapter together
KINDS = ("attention", "similarity")


# -- what is computed ------------------------------------------------------------------------------
def vocabulary() -> list[str]:
    """The similarity explorer's fixed vocabulary: one word or phrase per line of ``vocabulary.txt``."""
    text = (STATIC / "vocabulary.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def crop_image(image, size: int = 224) -> np.ndarray:
    """The square the explorer shows: short side resized to ``size`` (bilinear), centre crop; uint8 RGB.

    A ``size`` x ``size`` square is one of SCLIP's sliding windows, so what the explorer shows is what
    the encoder sees in one forward pass.
    """
    rgb = resize_to_fit(as_image_tensor(image), size, long_side=10**6)
    h, w = rgb.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    square = rgb[:, top : top + size, left : left + size]
    return (square.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _model_input(model, square: np.ndarray) -> torch.Tensor:
    visual = model.visual
    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    device = next(model.parameters()).device
    return normalize(as_image_tensor(square).to(device), mean, std)[None]


@torch.no_grad()
def image_arrays(model, x: torch.Tensor, rows: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One pass through the encoder for one image ``x`` ``(1, 3, H, W)``: attention rows and dense features.

    - rows ``(layers, variants, N, 1 + N)``: the heads-averaged attention rows of the patch queries in every
      block; in block ``l`` each variant is applied to that block's own q and k (what
      ``DenseEncoder.attention_maps(x, l, variant)`` returns, heads averaged, CLS row dropped);
    - features ``(variants, dim, N)``: each variant's L2-normalised patch features (``dense_features``).
    """
    encoders = [DenseEncoder(model, v) for v in VARIANTS]
    enc = encoders[0]
    grid = enc.grid(*x.shape[-2:])
    blocks = model.visual.transformer.resblocks
    h = enc.embed(x)
    out = []
    for layer, block in enumerate(blocks):
        if rows:
            q, k, _, scale = _project_qkv(block.attn, block.ln_1(h))
            ctx = AttentionContext(scale=scale, grid=grid)
            out.append(torch.stack([attention_weights(v, q, k, ctx)[0].float().mean(0)[1:] for v in VARIANTS]))
        if layer < len(blocks) - 1:
            h = enc.run_blocks(h, layer + 1, start=layer)
    visual = model.visual
    feats = [
        F.normalize(visual.ln_post(e.last_block(h, grid)) @ visual.proj, dim=-1)[0, 1:].float().T for e in encoders
    ]
    return (torch.stack(out) if rows else None), torch.stack(feats)


# -- the data --------------------------------------------------------------------------------------
@dataclass
class ExplorerData:
    """The explorers' data: a JSON-able ``manifest`` and the binary files (``blobs``) it names.

    Blob names are content hashes, so two explorers, or two chapters, that need the same array share one file.
    """

    manifest: dict
    blobs: dict[str, bytes] = field(default_factory=dict)

    def array(self, ref: dict) -> np.ndarray:
        """A float16 array named in the manifest (``{"blob", "shape", "dtype"}``), decoded."""
        return np.frombuffer(self.blobs[ref["blob"]], dtype="<f2").reshape(ref["shape"])

    def needed(self, kind: str) -> list[str]:
        """The blobs an explorer of ``kind`` loads."""
        key = "attention" if kind == "attention" else "features"
        names = [n for img in self.manifest["images"] for n in (img["image"], img.get(key, {}).get("blob")) if n]
        vocab = self.manifest.get("vocabulary")
        if kind == "similarity" and vocab:
            names.append(vocab["blob"])
        return names

    def nbytes(self, kinds: Sequence[str] = KINDS) -> int:
        """Bytes of the files the explorers of ``kinds`` load (each file once)."""
        return sum(len(self.blobs[n]) for n in dict.fromkeys(itertools.chain(*(self.needed(k) for k in kinds))))

    def save(self, folder) -> Path:
        """Write every blob (atomically; one that is already there is the same content) and the manifest."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.blobs.items():
            if not (folder / name).is_file() or (folder / name).stat().st_size != len(data):
                _write_atomic(folder / name, data)
        text = json.dumps(self.manifest, indent=1).encode()
        path = folder / f"manifest-{hashlib.sha256(text).hexdigest()[:16]}.json"
        _write_atomic(path, text)
        return path


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a web server must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _blob(prefix: str, array, blobs: dict) -> dict:
    data = np.ascontiguousarray(np.asarray(array, dtype="<f2")).tobytes()
    name = f"{prefix}-{hashlib.sha256(data).hexdigest()[:16]}.f16"
    blobs[name] = data
    return {"blob": name, "shape": list(np.shape(array)), "dtype": "float16"}


def _jpeg(square: np.ndarray, blobs: dict) -> str:
    buf = io.BytesIO()
    Image.fromarray(square).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    name = f"image-{hashlib.sha256(data).hexdigest()[:16]}.jpg"
    blobs[name] = data
    return name


@torch.no_grad()
def compute(
    model,
    images: Mapping[str, object],
    *,
    attention: bool = True,
    similarity: bool = True,
    words: Sequence[str] | None = None,
    templates: Sequence[Template] = DEFAULT_TEMPLATES,
    text_features: torch.Tensor | np.ndarray | None = None,
    size: int = 224,
    smoke: bool | None = None,
    title: str = "",
) -> ExplorerData:
    """Everything the explorers show for ``images`` (name -> any image ``as_image_tensor`` accepts).

    ``attention`` stores the rows for the attention explorer, ``similarity`` the dense features and the
    vocabulary's embeddings (``words``, default :func:`vocabulary`) for the similarity explorer.
    ``text_features`` passes precomputed embeddings of ``words`` (e.g. from an earlier build).
    ``smoke`` marks untrained weights (default: read from the model); the explorer then says so.
    """
    if not images:
        raise ValueError("no images: pass a mapping such as {'cat': image}")
    if not (attention or similarity):
        raise ValueError("nothing to compute: set attention=True, similarity=True or both")
    info = weights_info(model)
    if smoke is None:
        smoke = bool(info is None or info.untrained)
    visual = model.visual
    blobs: dict[str, bytes] = {}
    entries, grid = [], None
    for name, image in images.items():
        square = crop_image(image, size)
        x = _model_input(model, square)
        grid = DenseEncoder(model, "vanilla").grid(*x.shape[-2:])
        entry = {"name": str(name), "image": _jpeg(square, blobs)}
        rows, features = image_arrays(model, x, rows=attention)
        if attention:
            entry["attention"] = _blob("attention", rows.cpu().numpy(), blobs)
        if similarity:
            entry["features"] = _blob("features", features.cpu().numpy(), blobs)
        entries.append(entry)
    vocab = None
    if similarity:
        words = list(words) if words is not None else vocabulary()
        if text_features is None:
            text_features = text_embeddings(model, words, templates, progress=False)
        text_features = np.asarray(torch.as_tensor(text_features).float().cpu())
        if text_features.shape[0] != len(words):
            raise ValueError(f"text_features has {text_features.shape[0]} rows for {len(words)} words")
        vocab = {**_blob("vocab", text_features, blobs), "words": words}
    manifest = {
        "format": FORMAT,
        "title": title,
        "smoke": smoke,
        "model": info.model_name if info else type(model).__name__,
        "weights": "untrained (random)" if smoke else (info.pretrained if info else "unknown"),
        "size": [size, size],
        "grid": list(grid),
        "layers": len(visual.transformer.resblocks),
        "variants": list(VARIANTS),
        "labels": [LABELS[v] for v in VARIANTS],
        "templates": [str(t) for t in templates],
        "palette": _palette(),
        "images": entries,
        "vocabulary": vocab,
    }
    return ExplorerData(manifest, blobs)


def _palette(n: int = 32) -> list[list[int]]:
    from ..viz import palette

    return palette(n + 1)[1:].tolist()  # class 0's black would hide the image


# -- the display -----------------------------------------------------------------------------------
class Explorer:
    """An explorer as HTML + JavaScript: the output of a notebook cell, or part of a static page.

    ``kind`` is ``"attention"`` (hover a patch; layer slider) or ``"similarity"`` (type words).
    With ``base_url`` the page fetches the data files from there (save them with
    :meth:`ExplorerData.save`); without it the data is inlined (base64), for Jupyter and Colab.
    ``options`` set the starting state: ``image`` (name), ``patch`` ((row, col)), ``layer`` (1-based),
    ``words`` (``"cat; wall; floor"``).
    """

    def __init__(self, data: ExplorerData, kind: str, *, base_url: str | None = None, **options) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind == "similarity" and not data.manifest.get("vocabulary"):
            raise ValueError("this data has no vocabulary: compute it with similarity=True")
        if kind == "attention" and not all("attention" in i for i in data.manifest["images"]):
            raise ValueError("this data has no attention rows: compute it with attention=True")
        unknown = set(options) - {"image", "patch", "layer", "words"}
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}; use image, patch, layer or words")
        self.data, self.kind, self.base_url, self.options = data, kind, base_url, options

    def config(self) -> dict:
        """What the script receives: kind, manifest, where each file is, starting state."""
        manifest = dict(self.data.manifest)
        if self.kind == "attention":
            manifest["vocabulary"] = None  # the word list is not needed there
        sources = {}
        for name in self.data.needed(self.kind):
            if self.base_url is not None:
                sources[name] = {"url": self.base_url.rstrip("/") + "/" + name}
            else:
                sources[name] = {"b64": base64.b64encode(self.data.blobs[name]).decode("ascii")}
        return {"kind": self.kind, "manifest": manifest, "sources": sources, "options": self.options}

    def _repr_html_(self) -> str:
        uid = "sclip-explorer-" + os.urandom(6).hex()
        script = (STATIC / "explorer.js").read_text(encoding="utf-8")
        config = json.dumps(self.config()).replace("</", "<\\/")  # no "</script>" inside the JSON
        return (
            f'<div class="sclip-explorer" id="{uid}" data-kind="{html.escape(self.kind)}">'
            f"<noscript>This explorer needs JavaScript.</noscript></div>\n"
            f'<script type="application/json" id="{uid}-config">{config}</script>\n'
            f"<script>{script}\nSclipExplorer.mount('{uid}');</script>"
        )

    def save_html(self, path) -> Path:
        """A standalone HTML page of this explorer (the data inlined unless ``base_url`` was given)."""
        path = Path(path)
        page = f"<!doctype html><html><head><meta charset='utf-8'></head><body>{self._repr_html_()}</body></html>"
        _write_atomic(path, page.encode())
        return path

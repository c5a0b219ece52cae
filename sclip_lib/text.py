"""Class names with synonyms -> text embeddings, computed once per model and cached.

A class is one or more names ("sofa, couch"); every name is a separate text query, and a class
later scores the maximum over its names' probabilities. Each query's embedding is the normalised
mean of its 80 prompt-template embeddings (open_clip's ``OPENAI_IMAGENET_TEMPLATES``), computed as
open_clip's ``build_zero_shot_classifier`` does but faster:

- Batched by prompts, not by classes, each batch cut to its longest prompt. open_clip's ``encode_text``
  always runs all 77 context positions, but CLIP's text tower is causal and pools at the end-of-text
  token: positions after it never influence the result. Prompts such as "a photo of a cat." are about
  8 tokens, so running a batch of similar-length prompts only up to its longest one computes the same
  embeddings (up to float rounding). Models that are not open_clip's plain ``CLIP`` (or pool
  differently) run at full length.
- Kept in memory per model, and on disk so the same prompts are not encoded again in every process.
  The disk key: the model name, its weights (SHA-256 of a checkpoint file, the hub tag, or the untrained
  seed), QuickGELU, the template set, the device type and autocast, and the class name; one small
  ``.npy`` file per name, written atomically, so concurrent processes never corrupt each other. Where:
  ``$SCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sclip``, else ``~/.cache/sclip``; then
  ``text-embeddings/``. ``SCLIP_TEXT_CACHE=0`` (or ``text_embeddings(..., cache=False)``) turns it off.
  Models that :func:`sclip_lib.load_clip` did not make, and callable templates, are never cached on
  disk (their weights or prompts cannot be named reliably).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import string
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import text_global_pool
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import nn
from tqdm.auto import tqdm

from .files import write_atomic
from .models import UNTRAINED_SEED, weights_info

__all__ = [
    "STUFF_BACKGROUND",
    "ClassNames",
    "parse_classes",
    "text_embeddings",
    "OPENAI_IMAGENET_TEMPLATES",
    "read_class_file",
    "encode_queries",
    "prompt_batch_size",
    "cache_dir",
    "TextCache",
    "CACHE_DIR_ENV",
    "TEXT_CACHE_ENV",
]

Template = str | Callable[[str], str]
ClassSpec = str | Sequence[str]

# The authors' background class for VOC21 and COCO-Object: 26 stuff words, one class.
STUFF_BACKGROUND = (
    "sky, wall, tree, wood, grass, road, sea, river, mountain, sands, desk, bed, building, cloud, "
    "lamp, door, window, wardrobe, ceiling, shelf, curtain, stair, floor, hill, rail, fence"
)


@dataclass(frozen=True)
class ClassNames:
    """Classes with their synonyms, flattened into text queries.

    ``synonyms[i]`` is the tuple of names of class i and ``names[i]`` its display name (the first);
    ``queries`` lists every name once, in order; ``query_to_class[j]`` is the class of query j.
    """

    synonyms: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> list[str]:
        """One display name per class: its first name."""
        return [names[0] for names in self.synonyms]

    @property
    def queries(self) -> tuple[str, ...]:
        return tuple(name for names in self.synonyms for name in names)

    @property
    def query_to_class(self) -> torch.Tensor:
        return torch.tensor([i for i, names in enumerate(self.synonyms) for _ in names], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.synonyms)


def parse_classes(classes: str | Sequence[ClassSpec]) -> ClassNames:
    """Parse ``"cat; sofa, couch"`` or ``["cat", "sofa, couch"]`` or ``[["cat"], ["sofa", "couch"]]``.

    Raises ``TypeError`` for anything but a string or an ordered sequence of strings (a ``set`` has no
    order, so class indices would change from run to run), ``ValueError`` on an empty list, a blank
    name, or a name used twice.
    """
    if isinstance(classes, str):
        classes = [c for c in classes.split(";")]
    if not isinstance(classes, Sequence):
        raise TypeError(
            f"classes must be a list of names or one ';'-separated string, got {type(classes).__name__}"
            + (" (a set has no order: pass sorted(...) or a list)" if isinstance(classes, (set, frozenset)) else "")
        )
    if len(classes) == 0:
        raise ValueError("the class list is empty: give at least one class name, e.g. ['cat', 'sofa, couch']")
    parsed = []
    for i, spec in enumerate(classes):
        if isinstance(spec, str):
            names = spec.split(",")
        elif isinstance(spec, Sequence):
            names = list(spec)
        else:
            raise TypeError(
                f"classes[{i}] must be a string (synonyms separated by ',') or a list of strings, got {type(spec).__name__} {spec!r}"
            )
        if not all(isinstance(n, str) for n in names):
            raise TypeError(f"classes[{i}] = {spec!r}: names must be strings")
        names = tuple(n.strip() for n in names)
        if not names or any(not n for n in names):
            raise ValueError(f"class {spec!r} has an empty name; separate classes with ';' and synonyms with ','")
        parsed.append(names)
    seen: dict[str, int] = {}
    for i, names in enumerate(parsed):
        for n in names:
            key = n.lower()
            if key in seen:
                raise ValueError(
                    f"the name {n!r} is used twice (classes {seen[key]} and {i}); each name may appear once"
                )
            seen[key] = i
    return ClassNames(tuple(parsed))


def check_templates(templates: Sequence[Template]) -> tuple[Template, ...]:
    """The templates as a tuple; each must be a callable or a string with one ``{}`` for the name."""
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise TypeError(
            f"templates must be a list of strings like 'a photo of a {{}}.', got {type(templates).__name__} {templates!r}"
        )
    if not templates:
        raise ValueError("templates is empty: use sclip_lib.OPENAI_IMAGENET_TEMPLATES or e.g. ['a photo of a {}.']")
    for t in templates:
        if callable(t):
            continue
        if not isinstance(t, str):
            raise TypeError(f"template {t!r} must be a string with '{{}}' where the class name goes, or a callable")
        if "{}" not in t:
            raise ValueError(
                f"template {t!r} has no '{{}}' for the class name, so every class would get the same prompt; "
                "write e.g. 'a photo of a {}.'"
            )
        _check_fields(t)
    return tuple(templates)


def _check_fields(template: str) -> None:
    """One ``{}`` and no other format field: ``str.format(name)`` must fill the template (templates are
    filled with ``template.format(name)``, so ``'{} {}'`` or ``'{name}'`` would fail inside the encoder)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:  # an unmatched brace
        detail = str(err)
    else:
        if fields == [""]:
            return
        detail = f"it has {len(fields)}: {', '.join('{' + f + '}' for f in fields)}"
    raise ValueError(
        f"template {template!r} must hold exactly one '{{}}' where the class name goes and no other "
        f"braces ({detail}); write literal braces as '{{{{' and '}}}}', e.g. 'a photo of a {{}}.'"
    )


def read_class_file(path) -> list[str]:
    """A class file as the authors wrote them: one class per line, synonyms separated by ', '."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


# -- encoding many prompts fast ----------------------------------------------------------------
def prompt_batch_size(device: torch.device) -> int:
    """Prompts per text-encoder call: large enough to keep the device busy, small enough for its memory."""
    return 1024 if device.type == "cuda" else 256


def _prompt(template: Template, name: str) -> str:
    return template(name) if callable(template) else template.format(name)


@torch.no_grad()
def encode_queries(
    model: nn.Module,
    tokenizer,
    queries: Sequence[str],
    templates: Sequence[Template],
    device: torch.device,
    *,
    batch_size: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """``(len(queries), dim)`` embeddings: each the L2-normalised mean of its normalised prompt embeddings.

    The same arithmetic as open_clip's ``build_zero_shot_classifier``, with prompts batched across
    classes. A tqdm bar appears when encoding takes more than two seconds (``progress=False``: never).
    """
    prompts = [_prompt(t, q) for q in queries for t in templates]  # query-major, as open_clip orders them
    tokens = tokenizer(prompts)
    _warn_truncated(tokenizer, queries, templates, tokens.shape[-1])
    batch_size = batch_size or prompt_batch_size(device)
    lengths = tokens.argmax(dim=-1) + 1 if _can_truncate(model) else torch.full((len(prompts),), tokens.shape[-1])
    order = torch.argsort(lengths, stable=True)  # similar lengths share a batch, so little is padded
    feats = None
    with tqdm(total=len(prompts), desc="text embeddings", unit="prompt", delay=2, disable=not progress) as bar:
        for start in range(0, len(prompts), batch_size):
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            emb = F.normalize(_encode(model, tokens[idx, :width].to(device)), dim=-1)
            if feats is None:
                feats = emb.new_empty((len(prompts), emb.shape[-1]))
            feats[idx.to(feats.device)] = emb
            bar.update(len(idx))
    per_query = feats.reshape(len(queries), len(templates), -1).mean(dim=1)
    return per_query / per_query.norm(dim=1, keepdim=True)


def _can_truncate(model: nn.Module) -> bool:
    return (
        isinstance(model, open_clip.model.CLIP)
        and getattr(model, "text_pool_type", None) == "argmax"
        and isinstance(getattr(model, "attn_mask", None), torch.Tensor)
        and not getattr(model.transformer, "grad_checkpointing", False)
    )


def _encode(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` on tokens that may be cut after their end-of-text tokens."""
    width = tokens.shape[-1]
    context = model.positional_embedding.shape[0] if hasattr(model, "positional_embedding") else width
    if width == context or not _can_truncate(model):
        return model.encode_text(F.pad(tokens, (0, context - width)) if width < context else tokens)
    # CLIP.encode_text with the positional embedding and the causal mask cut to `width` positions
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:width].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:width, :width])
    x = text_global_pool(model.ln_final(x), tokens, "argmax")
    if model.text_projection is None:
        return x
    return model.text_projection(x) if isinstance(model.text_projection, nn.Linear) else x @ model.text_projection


def _warn_truncated(tokenizer, queries: Sequence[str], templates: Sequence[Template], context: int) -> None:
    """Warn about class names whose prompts exceed the text encoder's context (they are cut there)."""
    encode = getattr(tokenizer, "encode", None)
    if encode is None or not templates:
        return
    longest = max(templates, key=lambda t: len(_prompt(t, "x")))
    for q in queries:
        n = len(encode(_prompt(longest, q))) + 2  # start and end tokens
        if n > context:
            warnings.warn(
                f"class name {q[:60]!r}{'...' if len(q) > 60 else ''} makes prompts of {n} tokens; the text "
                f"encoder keeps the first {context} and drops the rest, so names that differ only after that "
                "get the same embedding. Shorten the name.",
                stacklevel=4,
            )


# -- the on-disk cache --------------------------------------------------------------------------
CACHE_DIR_ENV = "SCLIP_CACHE_DIR"
TEXT_CACHE_ENV = "SCLIP_TEXT_CACHE"
_FORMAT = 1  # bump when the embedding computation changes


def cache_dir() -> Path:
    """The folder of sclip_lib's caches (not created here)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "sclip"


class TextCache:
    """Embeddings of one (model weights, templates, device kind) on disk, one file per class name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def open(cls, model: nn.Module, templates: Sequence, device: torch.device) -> TextCache | None:
        """The cache for this model and template set, or None when caching is off or impossible."""
        if os.environ.get(TEXT_CACHE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        info = weights_info(model)
        if info is None or any(not isinstance(t, str) for t in templates):
            return None
        weights = info.sha256 or (f"untrained-seed{UNTRAINED_SEED}" if info.untrained else f"tag:{info.pretrained}")
        key = {
            "format": _FORMAT,
            "model": info.model_name,
            "weights": weights,
            "quick_gelu": info.quick_gelu,
            "templates": list(templates),
            "device": device.type,
            "autocast": torch.is_autocast_enabled(device.type),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return cls(cache_dir() / "text-embeddings" / f"{info.model_name}-{digest}")

    def _path(self, name: str) -> Path:
        return self.folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.npy"

    def load(self, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The cached embeddings among ``names`` (unreadable files are ignored and recomputed)."""
        found = {}
        for name in names:
            path = self._path(name)
            if path.is_file():
                try:
                    found[name] = torch.from_numpy(np.load(path, allow_pickle=False))
                except (OSError, ValueError):
                    continue
        return found

    def save(self, embeddings: dict[str, torch.Tensor]) -> None:
        """Store embeddings; a cache that cannot be written only costs time, so it warns and goes on."""
        try:
            for name, emb in embeddings.items():
                buf = io.BytesIO()
                np.save(buf, emb.detach().cpu().numpy(), allow_pickle=False)
                write_atomic(self._path(name), buf.getvalue())
        except OSError as err:
            warnings.warn(
                f"text embedding cache {self.folder} cannot be written ({err}); set {CACHE_DIR_ENV} to a "
                f"writable folder or {TEXT_CACHE_ENV}=0",
                stacklevel=3,
            )


# -- embeddings ---------------------------------------------------------------------------------
# model -> {(query, templates, device): embedding}; weak keys so a dropped model frees its cache
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


@torch.no_grad()
def text_embeddings(
    model: nn.Module,
    queries: Sequence[str],
    templates: Sequence[Template] = OPENAI_IMAGENET_TEMPLATES,
    device: str | torch.device | None = None,
    tokenizer=None,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    cache: bool = True,
) -> torch.Tensor:
    """L2-normalised text embeddings ``(len(queries), dim)``.

    Kept in memory per model, and on disk (``cache=True``, :class:`TextCache`) per
    weights, templates and name. Prompts are encoded ``batch_size`` at a time (default 256 on CPU,
    1024 on CUDA), with a progress bar when that takes more than two seconds.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    templates = check_templates(templates)
    memory = _CACHE.setdefault(model, {})
    missing = [q for q in dict.fromkeys(queries) if (q, templates, str(device)) not in memory]
    if missing:
        disk = TextCache.open(model, templates, device) if cache else None
        found = disk.load(missing) if disk is not None else {}
        todo = [q for q in missing if q not in found]
        if todo:
            if tokenizer is None:
                info = getattr(model, "sclip_weights", None)
                tokenizer = open_clip.get_tokenizer(info.model_name if info else "ViT-B-16")
            new = dict(
                zip(
                    todo,
                    encode_queries(model, tokenizer, todo, templates, device, batch_size=batch_size, progress=progress),
                )
            )
            if disk is not None:
                disk.save(new)
            found.update(new)
        for q in missing:
            memory[(q, templates, str(device))] = found[q].to(device)
    return torch.stack([memory[(q, templates, str(device))] for q in queries])

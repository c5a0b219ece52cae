"""An on-disk cache of text embeddings, so the same prompts are not encoded again in every process.

Key: the model name, its weights (SHA-256 of a checkpoint file, the hub tag, or the untrained seed),
QuickGELU, the template set, the device type and autocast, and the class name. One small ``.npy``
file per name, written atomically, so concurrent processes never corrupt each other.

Where: ``$SCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/sclip``, else ``~/.cache/sclip``; then
``text-embeddings/``. ``SCLIP_TEXT_CACHE=0`` (or ``text_embeddings(..., cache=False)``) turns it off.
Models that :func:`sclip_lib.load_clip` did not make, and callable templates, are never cached
(their weights or prompts cannot be named reliably).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .files import write_atomic
from .models import UNTRAINED_SEED, weights_info

__all__ = ["cache_dir", "TextCache", "CACHE_DIR_ENV", "TEXT_CACHE_ENV"]

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
    def open(cls, model: nn.Module, templates: Sequence, device: torch.device) -> "TextCache | None":
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

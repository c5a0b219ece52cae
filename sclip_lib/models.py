"""``load_clip``: an open_clip model from a hub tag, a local file or a local checkpoint folder.

Weights are never replaced silently: if the requested weights cannot be had, ``load_clip`` raises
:class:`WeightsError` naming the model, the cause and the fix. Untrained weights only come from an
explicit ``pretrained=None, allow_untrained=True`` and are marked on the model, so every output
made from them can say so.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn

__all__ = ["load_clip", "WeightsError", "WeightsInfo", "weights_info", "CHECKPOINT_DIR_ENV", "UNTRAINED_SEED"]

log = logging.getLogger(__name__)

CHECKPOINT_DIR_ENV = "SCLIP_CHECKPOINT_DIR"
UNTRAINED_SEED = 0  # untrained weights are seeded so smoke runs are reproducible
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


class WeightsError(RuntimeError):
    """The requested weights could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from; attached to every model ``load_clip`` returns."""

    model_name: str
    pretrained: str | None  # the tag or path asked for; None for untrained
    source: str  # "hub", "file", "checkpoint-dir" or "untrained"
    path: str | None = None
    sha256: str | None = None
    quick_gelu: bool = False

    @property
    def untrained(self) -> bool:
        return self.source == "untrained"

    def describe(self) -> str:
        if self.untrained:
            return f"{self.model_name} with UNTRAINED random weights (smoke mode: results are not meaningful)"
        where = self.path or "the hub"
        return f"{self.model_name} / {self.pretrained} from {where}"


def weights_info(model: nn.Module) -> WeightsInfo | None:
    """The :class:`WeightsInfo` of a model made by :func:`load_clip` (None for other models)."""
    return getattr(model, "sclip_weights", None)


def load_clip(
    model_name: str = "ViT-B-16",
    pretrained: str | os.PathLike | None = "openai",
    *,
    allow_untrained: bool = False,
    quick_gelu: bool | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
) -> nn.Module:
    """Build an open_clip model and load its weights, in eval mode.

    Args:
        model_name: any open_clip model name, e.g. ``"ViT-B-16"``, ``"ViT-L-14"``.
        pretrained: an open_clip pretrained tag (``"openai"``, ``"laion2b_s34b_b88k"``, ...) or a path to
            a checkpoint (OpenAI ``.pt`` JIT archive or state dict, open_clip ``.bin``/``.safetensors``).
            Tags are first looked up in the folder named by ``$SCLIP_CHECKPOINT_DIR``, as
            ``<dir>/<OpenAI file name>`` (``ViT-B-16.pt``, hash-checked) for ``openai`` or
            ``<dir>/<model>/<tag>/<file>`` for any tag, and only then downloaded.
            ``None`` builds random weights and needs ``allow_untrained=True``.
        allow_untrained: permit ``pretrained=None`` (tests and smoke runs only).
        quick_gelu: force OpenAI's QuickGELU on or off. ``None`` decides it: on for the ``openai`` tag,
            for ``*-quickgelu`` models and for files recognised as OpenAI checkpoints.
        device: where to put the model.
        cache_dir: open_clip's download cache.
    """
    model_name = _check_model_name(str(model_name))
    if pretrained is None:
        model, info = _untrained(model_name, allow_untrained, quick_gelu)
    elif _looks_like_path(pretrained):
        model, info = _from_file(model_name, Path(pretrained), quick_gelu, source="file", tag=str(pretrained))
    else:
        model, info = _from_tag(model_name, str(pretrained), quick_gelu, cache_dir)
    model.sclip_weights = info
    log.info("loaded %s", info.describe())
    return model.to(device).eval()


# -- the three sources ----------------------------------------------------------------------------
def _untrained(model_name: str, allow: bool, quick_gelu: bool | None):
    if not allow:
        raise WeightsError(
            f"pretrained=None would give {model_name} random, untrained weights. Pass a pretrained tag "
            f"(e.g. 'openai') or a checkpoint path; for tests and smoke runs only, add allow_untrained=True."
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = _create(model_name, bool(quick_gelu))
    msg = f"{model_name} has UNTRAINED random weights (seed {UNTRAINED_SEED}): smoke mode, results are not meaningful"
    warnings.warn(msg, stacklevel=3)
    return model, WeightsInfo(model_name, None, "untrained", quick_gelu=bool(quick_gelu))


def _from_tag(model_name: str, tag: str, quick_gelu: bool | None, cache_dir: str | None):
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if tag not in tags:
        raise WeightsError(
            f"{model_name} has no pretrained tag {tag!r}. Its tags: {', '.join(tags) or 'none'}. "
            "Or pass a checkpoint file path."
        )
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if quick_gelu is None:
        quick_gelu = bool(cfg.get("quick_gelu", False)) or model_name.endswith("-quickgelu")
    local = find_local_checkpoint(model_name, tag)
    if local is not None:
        return _from_file(model_name, local, quick_gelu, source="checkpoint-dir", tag=tag)
    try:
        model = open_clip.create_model(model_name, pretrained=tag, force_quick_gelu=quick_gelu, cache_dir=cache_dir)
    except Exception as err:  # offline, hub error, bad hash: all end here
        official = _openai_file(model_name)[0] if tag == "openai" else None
        local_hint = f"<dir>/{official}" if official else f"<dir>/{model_name}/{tag}/open_clip_pytorch_model.bin"
        raise WeightsError(
            f"could not load {model_name} / {tag}: {type(err).__name__}: {err}\n"
            f"Fix: on a machine with internet, check the connection (weights come from the Hugging Face hub). "
            f"Offline, put the checkpoint at {local_hint} and set {CHECKPOINT_DIR_ENV}=<dir>, or pass "
            f"pretrained='/path/to/checkpoint'."
        ) from err
    return model, WeightsInfo(model_name, tag, "hub", quick_gelu=quick_gelu)


def _from_file(model_name: str, path: Path, quick_gelu: bool | None, *, source: str, tag: str):
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in _CHECKPOINT_SUFFIXES)
        raise WeightsError(
            f"{path} is a folder, not a checkpoint file: pass the file itself"
            + (f", e.g. {path / inside[0]}" if inside else f" (a {'/'.join(_CHECKPOINT_SUFFIXES)} file)")
        )
    if not path.is_file():
        raise WeightsError(f"checkpoint file {path} for {model_name} does not exist. Check the path.")
    damaged = _damaged(path)
    if damaged:
        raise WeightsError(f"{path} is not a checkpoint or is damaged ({damaged}): download it again")
    digest = sha256_of(path)
    official_name, official_sha = _openai_file(model_name)
    if source == "checkpoint-dir" and path.name == official_name and digest != official_sha:
        raise WeightsError(
            f"{path} carries the name of OpenAI's {model_name} checkpoint but its SHA-256 is {digest}, "
            f"not {official_sha}. The file is damaged or not the official one: download it again, or "
            f"pass it by path (pretrained='{path}') if it is a fine-tune you mean to use."
        )
    is_openai = digest in _OPENAI_SHAS or _is_torchscript(path)
    if quick_gelu is None:
        quick_gelu = is_openai or model_name.endswith("-quickgelu")
    model = _create(model_name, quick_gelu, weights_follow=True)
    try:
        if _is_torchscript(path):
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
            for key in ("input_resolution", "context_length", "vocab_size"):
                state.pop(key, None)
            # a scripted model also saves buffers that are rebuilt at construction (attn_mask)
            buffers = {name for name, _ in model.named_buffers()} - set(model.state_dict())
            state = {k: v for k, v in state.items() if k not in buffers}
            model.load_state_dict(state, strict=True)
        else:
            open_clip.load_checkpoint(model, str(path), strict=True)
    except Exception as err:
        if isinstance(err, _READ_ERRORS) or "PytorchStreamReader" in str(err) or "central directory" in str(err):
            raise WeightsError(
                f"{path} is not a checkpoint or is damaged ({type(err).__name__}: {str(err)[:200]}): download it again"
            ) from err
        raise WeightsError(
            f"{path} does not hold weights for {model_name}: {type(err).__name__}: {str(err)[:500]}\n"
            "Fix: pass the model name the checkpoint was trained with (see open_clip.list_models())."
        ) from err
    # a warning, so that the file and its hash are on screen at the default log level
    log.warning("loaded %s weights from %s (sha256 %s, quick_gelu=%s)", model_name, path, digest, quick_gelu)
    return model, WeightsInfo(model_name, tag, source, str(path), digest, quick_gelu)


# -- helpers ----------------------------------------------------------------------------------------
def _create(model_name: str, quick_gelu: bool, *, weights_follow: bool = False) -> nn.Module:
    """An open_clip model with random weights.

    open_clip warns that the model was "initialized randomly". That is true for untrained models and is
    kept; with ``weights_follow`` the caller loads a checkpoint into the model next, so the warning would
    contradict the line that reports the loaded file, and is held back for this one call.
    """
    with _without_random_init_warning(model_name) if weights_follow else nullcontext():
        return open_clip.create_model(model_name, pretrained=None, force_quick_gelu=quick_gelu)


# open_clip logs through the root logger (logging.warning). A logger's filters see only the records made on
# that logger, so the filter also goes on open_clip's package and module loggers, for a release that uses them.
_OPEN_CLIP_LOGGERS = ("", "open_clip", "open_clip.factory")


@contextmanager
def _without_random_init_warning(model_name: str) -> Iterator[None]:
    """Drop open_clip's "No pretrained weights loaded for model '<model_name>' ... initialized randomly" record."""

    def keep(record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("initialized randomly" in text and "No pretrained weights" in text and f"'{model_name}'" in text)

    loggers = [logging.getLogger(name) for name in _OPEN_CLIP_LOGGERS]
    for logger in loggers:
        logger.addFilter(keep)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(keep)


def _check_model_name(name: str) -> str:
    name = name.replace("/", "-")  # OpenAI spells ViT-B/16
    models = open_clip.list_models()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=5)
        raise ValueError(
            f"unknown model {name!r}. Did you mean: {', '.join(close) or '-'}? See open_clip.list_models()."
        )
    return name


def _looks_like_path(pretrained) -> bool:
    s = str(pretrained)
    return isinstance(pretrained, os.PathLike) or os.sep in s or s.endswith(_CHECKPOINT_SUFFIXES) or os.path.exists(s)


def _openai_file(model_name: str) -> tuple[str | None, str | None]:
    """OpenAI's file name and SHA-256 for a model, read from open_clip's own download URL."""
    url = (
        open_clip.get_pretrained_url(model_name, "openai")
        if "openai" in open_clip.list_pretrained_tags_by_model(model_name)
        else ""
    )
    if "openaipublic" not in url:
        return None, None
    return url.rsplit("/", 1)[-1], url.split("/")[-2]


_OPENAI_SHAS = {
    sha for m in open_clip.list_pretrained_models_by_tag("openai") if (sha := _openai_file(m)[1]) is not None
}


def find_local_checkpoint(model_name: str, tag: str) -> Path | None:
    """The checkpoint for (model, tag) in ``$SCLIP_CHECKPOINT_DIR``, if that folder has one."""
    root = os.environ.get(CHECKPOINT_DIR_ENV)
    if not root:
        return None
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise WeightsError(
            f"{CHECKPOINT_DIR_ENV}={root} is not a folder. Point it at your checkpoint folder or unset it."
        )
    official, _ = _openai_file(model_name)
    if tag == "openai" and official and (root_path / official).is_file():
        return root_path / official
    folder = root_path / model_name / tag
    files = sorted(p for p in folder.glob("*") if p.suffix in _CHECKPOINT_SUFFIXES) if folder.is_dir() else []
    if len(files) > 1:  # prefer safetensors, as open_clip does
        files.sort(key=lambda p: p.suffix != ".safetensors")
    return files[0] if files else None


_READ_ERRORS = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError)


def _damaged(path: Path) -> str | None:
    """Why ``path`` cannot be a checkpoint, judged from its container (cheap: headers only), or None.

    Checkpoints are zip archives (``torch.save``, TorchScript), legacy pickles, or safetensors.
    """
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except Exception as err:  # safetensors raises its own error types
            return f"unreadable safetensors header: {err}"
        return None
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):
        return None if zipfile.is_zipfile(path) else "a zip archive cut short (truncated download?)"
    if head[:1] == b"\x80":  # a pickle (legacy torch.save)
        return None
    return f"{size} bytes that are neither a zip archive, a pickle nor safetensors"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())

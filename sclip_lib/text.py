"""Class names with synonyms -> text embeddings, computed once per model and cached.

A class is one or more names ("sofa, couch"); every name is a separate text query, and a class
later scores the maximum over its names' probabilities. Each query's embedding is the normalised
mean of its 80 prompt-template embeddings (open_clip's ``OPENAI_IMAGENET_TEMPLATES``), computed as
open_clip's ``build_zero_shot_classifier`` does but batched by prompts (:mod:`sclip_lib.text_encoding`).
"""

from __future__ import annotations

import string
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import open_clip
import torch
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import nn

from .text_encoding import encode_queries
from .textcache import TextCache

__all__ = ["STUFF_BACKGROUND", "ClassNames", "parse_classes", "text_embeddings", "OPENAI_IMAGENET_TEMPLATES", "read_class_file"]

Template = Union[str, Callable[[str], str]]
ClassSpec = Union[str, Sequence[str]]

# The authors' background class for VOC21 and COCO-Object: 26 stuff words, one class.
STUFF_BACKGROUND = (
    "sky, wall, tree, wood, grass, road, sea, river, mountain, sands, desk, bed, building, cloud, "
    "lamp, door, window, wardrobe, ceiling, shelf, curtain, stair, floor, hill, rail, fence"
)


@dataclass(frozen=True)
class ClassNames:
    """Classes with their synonyms, flattened into text queries.

    ``classes[i]`` is the tuple of names of class i; ``queries`` lists every name once, in order;
    ``query_to_class[j]`` is the class of query j.
    """

    classes: tuple[tuple[str, ...], ...]

    @property
    def queries(self) -> tuple[str, ...]:
        return tuple(name for names in self.classes for name in names)

    @property
    def query_to_class(self) -> torch.Tensor:
        return torch.tensor([i for i, names in enumerate(self.classes) for _ in names], dtype=torch.long)

    @property
    def labels(self) -> list[str]:
        """One display name per class: its first name."""
        return [names[0] for names in self.classes]

    def __len__(self) -> int:
        return len(self.classes)


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
            raise TypeError(f"classes[{i}] must be a string (synonyms separated by ',') or a list of strings, got {type(spec).__name__} {spec!r}")
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
                raise ValueError(f"the name {n!r} is used twice (classes {seen[key]} and {i}); each name may appear once")
            seen[key] = i
    return ClassNames(tuple(parsed))


def check_templates(templates: Sequence[Template]) -> tuple[Template, ...]:
    """The templates as a tuple; each must be a callable or a string with one ``{}`` for the name."""
    if isinstance(templates, str) or not isinstance(templates, Sequence):
        raise TypeError(f"templates must be a list of strings like 'a photo of a {{}}.', got {type(templates).__name__} {templates!r}")
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


# model -> {(query, templates, device): embedding}; weak keys so a dropped model frees its cache
_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


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

    Kept in memory per model, and on disk (``cache=True``, see :mod:`sclip_lib.textcache`) per
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
            new = dict(zip(todo, encode_queries(model, tokenizer, todo, templates, device, batch_size=batch_size, progress=progress)))
            if disk is not None:
                disk.save(new)
            found.update(new)
        for q in missing:
            memory[(q, templates, str(device))] = found[q].to(device)
    return torch.stack([memory[(q, templates, str(device))] for q in queries])

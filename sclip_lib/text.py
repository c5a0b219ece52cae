"""Class names with synonyms -> text embeddings, computed once per model and cached.

A class is one or more names ("sofa, couch"); every name is a separate text query, and a class
later scores the maximum over its names' probabilities. Each query's embedding is the normalised
mean of its 80 prompt-template embeddings (open_clip's ``OPENAI_IMAGENET_TEMPLATES``, encoded by
open_clip's ``build_zero_shot_classifier``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import open_clip
import torch
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import nn

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

    Raises ``ValueError`` on an empty list, a blank name, or a name used twice.
    """
    if isinstance(classes, str):
        classes = [c for c in classes.split(";")]
    if not isinstance(classes, Sequence) or len(classes) == 0:
        raise ValueError("the class list is empty: give at least one class name, e.g. ['cat', 'sofa, couch']")
    parsed = []
    for spec in classes:
        names = spec.split(",") if isinstance(spec, str) else list(spec)
        if not all(isinstance(n, str) for n in names):
            raise ValueError(f"class {spec!r}: names must be strings")
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


def read_class_file(path) -> list[str]:
    """A class file as the authors wrote them: one class per line, synonyms separated by ', '."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


# model -> {(queries, templates, device): embeddings}; weak keys so a dropped model frees its cache
_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def text_embeddings(
    model: nn.Module,
    queries: Sequence[str],
    templates: Sequence[Template] = OPENAI_IMAGENET_TEMPLATES,
    device: str | torch.device | None = None,
    tokenizer=None,
) -> torch.Tensor:
    """L2-normalised text embeddings ``(len(queries), dim)``, cached per model, queries and templates."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    templates = tuple(templates)
    cache = _CACHE.setdefault(model, {})
    missing = [q for q in dict.fromkeys(queries) if (q, templates, str(device)) not in cache]
    if missing:
        if tokenizer is None:
            info = getattr(model, "sclip_weights", None)
            tokenizer = open_clip.get_tokenizer(info.model_name if info else "ViT-B-16")
        weights = open_clip.build_zero_shot_classifier(
            model, tokenizer, missing, templates, num_classes_per_batch=4, device=device
        )  # (dim, len(missing))
        for q, w in zip(missing, weights.T):
            cache[(q, templates, str(device))] = w
    return torch.stack([cache[(q, templates, str(device))] for q in queries])

"""Encode many prompts fast: batched by prompts (not by classes), each batch cut to its longest prompt.

open_clip's ``encode_text`` always runs all 77 context positions, but CLIP's text tower is causal
and pools at the end-of-text token: positions after it never influence the result. Prompts such as
"a photo of a cat." are about 8 tokens, so running a batch of similar-length prompts only up to its
longest one computes the same embeddings (up to float rounding) several times faster. Models that
are not open_clip's plain ``CLIP`` (or pool differently) run at full length.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence, Union

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import text_global_pool
from torch import nn
from tqdm.auto import tqdm

__all__ = ["encode_queries", "prompt_batch_size"]

Template = Union[str, Callable[[str], str]]


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


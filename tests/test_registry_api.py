"""The attention registry's public surface: list_attentions, list_modifiers, is_attention, and a mapping
whose membership, lookup and iteration agree (composed names are built by get_attention, not stored)."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import replace

import pytest
import torch

import sclip_lib as sl
from sclip_lib import attention as att
from sclip_lib.attention import get_attention, is_attention, list_attentions, list_modifiers

BUILTIN = [
    "vanilla",
    "maskclip",
    "maskclip_no_residual",
    "sclip",
    "clearclip",
    "naclip",
    "qq",
    "kk",
    "kk_no_residual",
    "sclip_no_residual",
    "random_proj",
    "random_proj_no_residual",
]


@pytest.fixture
def new_variant():
    """A variant registered for one test and removed after it."""
    name = "test_registry_vv"

    @sl.register_attention(name, keep_residual=False, takes_bias=True)
    def vv(q, k, v, ctx):
        return v * 3

    try:
        yield name
    finally:
        att.ATTENTIONS._items.pop(name)


@pytest.fixture
def new_modifier():
    """A modifier registered for one test and removed after it: halves its base's output."""
    name = "test_halve"

    @sl.register_modifier(name)
    def halve(base):
        return replace(base, name=f"{base.name}+{name}", fn=lambda q, k, v, ctx: base.fn(q, k, v, ctx) / 2)

    try:
        yield name
    finally:
        att._MODIFIERS.pop(name)


def composed_names() -> list[str]:
    mods = list_modifiers()
    subsets = [p for n in (1, 2) for p in itertools.permutations(mods, n)]
    return ["+".join((base, *p)) for base in list_attentions() for p in subsets]


def test_list_attentions_is_the_registration_order():
    names = list_attentions()
    assert names[: len(BUILTIN)] == BUILTIN  # the built-ins are registered first, in this order
    assert names == list(sl.ATTENTIONS) == list(sl.ATTENTIONS.keys())
    assert len(names) == len(sl.ATTENTIONS) == len(set(names))
    names.append("mine")  # a copy: the registry cannot be changed through it
    assert "mine" not in list_attentions()


def test_a_registered_variant_is_listed_last_and_found(new_variant):
    assert list_attentions()[-1] == new_variant
    assert new_variant in sl.ATTENTIONS and sl.ATTENTIONS[new_variant].name == new_variant
    assert is_attention(new_variant) and get_attention(new_variant) is sl.ATTENTIONS[new_variant]
    assert list_attentions().index(new_variant) == len(list_attentions()) - 1


def test_list_modifiers_lists_resclips_and_a_new_one(new_modifier):
    assert list_modifiers()[:2] == ["rcs", "sfr"]
    assert list_modifiers()[-1] == new_modifier
    name = f"sclip+{new_modifier}"
    assert is_attention(name) and name not in sl.ATTENTIONS and name not in list_attentions()
    q, k, v = torch.randn(3, 1, 2, 5, 4).unbind(0)
    ctx = sl.AttentionContext(scale=0.5, grid=(2, 2))
    torch.testing.assert_close(get_attention(name).fn(q, k, v, ctx), sl.ATTENTIONS["sclip"].fn(q, k, v, ctx) / 2)


def test_a_new_variant_composes_with_the_modifiers(new_variant):
    variant = get_attention(f"{new_variant}+rcs+sfr")
    assert variant.name == f"{new_variant}+rcs+sfr" and variant.needs_prior and variant.layers
    assert f"{new_variant}+rcs+sfr" not in sl.ATTENTIONS


def test_membership_equals_iteration_for_bases_and_composed_names(new_variant, new_modifier):
    listed = list(sl.ATTENTIONS)
    for name in list_attentions():
        assert (name in sl.ATTENTIONS) is (name in listed) is True
    composed = composed_names()
    assert "naclip+rcs+sfr" in composed and f"{new_variant}+{new_modifier}" in composed
    for name in composed:
        assert (name in sl.ATTENTIONS) is (name in listed) is False
        assert sl.ATTENTIONS.get(name) is None  # the Mapping methods agree with `in`


def test_composed_names_are_built_by_get_attention_not_looked_up():
    variant = get_attention("naclip+rcs+sfr")
    assert variant.name == "naclip+rcs+sfr" and is_attention("naclip+rcs+sfr")
    with pytest.raises(KeyError, match=r"base variants only .*get_attention\('naclip\+rcs\+sfr'\)"):
        sl.ATTENTIONS["naclip+rcs+sfr"]
    # every composition of every base either builds or says why not, and is_attention says which
    for name in composed_names():
        try:
            get_attention(name)
        except ValueError:  # a modifier that cannot apply to that base (SFR needs a logit bias)
            assert not is_attention(name)
        else:
            assert is_attention(name)
    assert not is_attention("maskclip+sfr")


@pytest.mark.parametrize("name", ["nope", "", "sclip+", "+rcs", "sclip+nope", "sclip+rcs+rcs", "nope+rcs", "SCLIP"])
def test_unregistered_names(name):
    assert name not in sl.ATTENTIONS and name not in list(sl.ATTENTIONS) and not is_attention(name)
    assert sl.ATTENTIONS.get(name) is None
    with pytest.raises(KeyError):
        sl.ATTENTIONS[name]
    with pytest.raises(KeyError, match="sclip"):  # the message lists what exists
        get_attention(name)


@pytest.mark.parametrize("key", [None, 3, ("sclip",), ["sclip"]])
def test_keys_that_are_not_names(key):
    assert key not in sl.ATTENTIONS
    with pytest.raises(KeyError):
        sl.ATTENTIONS[key]


@pytest.mark.parametrize("cls", [att.AttentionVariant, att.AttentionContext, att.Prior])
def test_every_field_is_documented(cls):
    doc = cls.__doc__ or ""
    lines = [line.strip() for line in doc.splitlines()]

    def described(name: str) -> bool:  # ``name`` in prose, or "name: ..." in an Attributes section
        return f"``{name}``" in doc or any(line.startswith(f"{name}:") for line in lines)

    missing = [f.name for f in dataclasses.fields(cls) if not described(f.name)]
    assert not missing, f"{cls.__name__}'s docstring does not describe {missing}"


def test_public_functions_have_docstrings():
    for fn in (list_attentions, list_modifiers, is_attention, get_attention):
        assert fn.__doc__ and fn.__name__ in att.__all__

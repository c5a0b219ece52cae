"""Shared fixtures. Models are untrained (no weights exist offline) and built once per session."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

import sclip_lib as sl

# text embeddings are cached on disk: the tests' own folder, never the user's ~/.cache
os.environ["SCLIP_CACHE_DIR"] = tempfile.mkdtemp(prefix="sclip-test-cache-")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "benchmark-samples"
# One prompt template keeps text encoding cheap on CPU; the template set does not change any geometry.
ONE_TEMPLATE = ("a photo of a {}.",)


def shared_data(sub: str = "") -> Path:
    """Path into ../shared/data/benchmark-samples, or skip the test with a reason where it is absent."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real benchmark samples not found at {path} (they live beside the repository, not in it)")
    return path


def untrained(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sl.load_clip(name, pretrained=None, allow_untrained=True)


@pytest.fixture(scope="session")
def vit_b16():
    return untrained("ViT-B-16")


@pytest.fixture(scope="session")
def vit_b32():
    return untrained("ViT-B-32")


@pytest.fixture(autouse=True)
def _quiet_untrained_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*UNTRAINED.*")
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

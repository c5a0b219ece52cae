"""Shared fixtures. Models are untrained (no weights exist offline) and built once per session.

``local_hub`` serves a local Hugging Face hub (sclip_lib/testing/hub.py) with seeded random weights and
every benchmark repo of the registry, so the real download and streaming code paths run in the tests.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import warnings
from pathlib import Path

# huggingface_hub and datasets read HF_ENDPOINT, HF_HOME and the offline flags once, when imported, so they
# are set here, before anything imports them. The endpoint's port is reserved now: bound but not listening,
# so until the `local_hub` fixture serves it every request is refused, as on a machine without network.
# HF_HOME is a fresh folder: no test reads or writes the real cache.
_HUB_SOCKET = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_HUB_SOCKET.bind(("127.0.0.1", 0))
_HF_HOME = tempfile.mkdtemp(prefix="sclip-tests-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ.update(
    HF_ENDPOINT=f"http://127.0.0.1:{_HUB_SOCKET.getsockname()[1]}",
    HF_HOME=_HF_HOME,
    HF_HUB_OFFLINE="0",
    HF_DATASETS_OFFLINE="0",
    HF_HUB_DISABLE_TELEMETRY="1",
)
for _var in ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "HUGGINGFACE_HUB_CACHE", "SCLIP_CHECKPOINT_DIR"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402
import torch  # noqa: E402

import sclip_lib as sl  # noqa: E402

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


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    """The local hub on the endpoint reserved above: ViT-B-16 (safetensors) and ViT-B-32 (.bin, open_clip's
    fallback file) 'openai' weights, and every benchmark repo with a few rows."""
    from sclip_lib.testing.hub import LocalHub
    from sclip_lib.testing.hub_repos import build_hub

    root = build_hub(tmp_path_factory.mktemp("local-hub"), models=("ViT-B-16", "ViT-B-32"), rows=HUB_ROWS,
                     formats={"ViT-B-32": "bin"})  # fmt: skip
    hub = LocalHub(root, sock=_HUB_SOCKET).start()
    assert hub.url == os.environ["HF_ENDPOINT"]
    yield hub
    hub.stop()


HUB_ROWS = 4  # rows of each benchmark split on the local hub


@pytest.fixture
def offline(monkeypatch):
    """Offline mode as huggingface_hub and datasets see it (they read the flags once, at import)."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)

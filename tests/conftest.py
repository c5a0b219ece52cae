"""Shared fixtures. Models are untrained (no weights exist offline) and built once per session.

``local_hub`` serves a local Hugging Face hub (sclip_lib/testing/hub.py) with seeded random weights and
every benchmark repo of the registry, so the real download and streaming code paths run in the tests.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]  # tests/test_tiers.py runs small suites through the hooks below


def _load_hub_module():
    """sclip_lib/testing/hub.py loaded from its file: importing sclip_lib would import huggingface_hub now."""
    spec = importlib.util.spec_from_file_location("sclip_local_hub", REPO / "sclip_lib" / "testing" / "hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# huggingface_hub and datasets read HF_ENDPOINT, HF_HOME and the offline flags once, when imported, so they are
# set here, before anything imports them: the endpoint's port is reserved (refusing requests, as offline, until
# the `local_hub` fixture serves it) and HF_HOME is a fresh folder, so no test reads or writes the real cache.
_HUB = _load_hub_module()
_HF_HOME = tempfile.mkdtemp(prefix="sclip-tests-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
_HUB_SOCKET = _HUB.reserve_endpoint(_HF_HOME)
os.environ.pop("SCLIP_CHECKPOINT_DIR", None)

import pytest  # noqa: E402
import torch  # noqa: E402

import sclip_lib as sl  # noqa: E402

# text embeddings are cached on disk: the tests' own folder, never the user's ~/.cache
os.environ["SCLIP_CACHE_DIR"] = tempfile.mkdtemp(prefix="sclip-test-cache-")

SHARED_DATA = REPO.parent / "shared" / "data" / "benchmark-samples"
if SHARED_DATA.is_dir():  # the local hub and the book glue find the real samples through it
    os.environ.setdefault("SCLIP_SAMPLES_DIR", str(SHARED_DATA))
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
    from sclip_lib.testing.hub_repos import build_hub

    root = build_hub(
        tmp_path_factory.mktemp("local-hub"),
        models=("ViT-B-16", "ViT-B-32"),
        rows=HUB_ROWS,
        formats={"ViT-B-32": "bin"},
    )
    hub = _HUB.LocalHub(root, sock=_HUB_SOCKET).start()
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


# -- test tiers -----------------------------------------------------------------------------------------
# Every test belongs to one tier, decided by its file so that no file has to move: `pytest -m library` (or
# book, site) runs one tier, and the summary at the end shows each tier's counts, so a tier that was skipped
# whole (the site without a build, say) is seen rather than hidden among hundreds of passes.
TIERS = ("library", "book", "site")
# the built site opened in Chromium: every test skips where no site was built
SITE_FILES = frozenset({"test_book_site.py"})
# the chapters' sources, their Colab copies, the scripts and workflow that build them, and the build's outputs
# read as files (test_book_assets.py, test_book_student.py: those tests skip, with their reason, without a build)
BOOK_PREFIXES = ("test_book", "test_colab")


def tier_of(nodeid: str) -> str:
    """The tier of a test (or of a collected file) from its node id's file name."""
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    if name in SITE_FILES:
        return "site"
    return "book" if name.startswith(BOOK_PREFIXES) else "library"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(item.nodeid)))


# pytest's outcome categories, as the tier table counts them: an xfail checked nothing, so it counts as skipped
_COLUMNS = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failed",
    "error": "failed",
    "skipped": "skipped",
    "xfailed": "skipped",
    "deselected": "deselected",
}


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A 'test tiers' table: per tier passed / failed / skipped (and deselected); a loud line for each tier
    that ran no test at all, and under every tier with skips the reasons why, most frequent first."""
    if config.option.collectonly:
        return  # nothing ran
    counts = {tier: Counter() for tier in TIERS}
    reasons = {tier: Counter() for tier in TIERS}
    for category, column in _COLUMNS.items():
        for report in terminalreporter.stats.get(category, []):
            tier = tier_of(report.nodeid)
            counts[tier][column] += 1
            if category == "skipped":
                reasons[tier][_skip_reason(report)] += 1
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "test tiers")
    for tier in TIERS:
        c = counts[tier]
        line = f"{tier:<8} {c['passed']:>5} passed {c['failed']:>5} failed {c['skipped']:>5} skipped"
        write(line + (f" {c['deselected']:>5} deselected" if c["deselected"] else ""))
    for tier in TIERS:
        c = counts[tier]
        ran = c["passed"] + c["failed"]
        if not ran:
            if c["skipped"]:
                what = f"all {c['skipped']} skipped"
            elif c["deselected"]:
                what = f"{c['deselected']} deselected (by -m or -k)"
            else:
                what = "no test of this tier was collected in this run"
            write(f"TIER NOT EXERCISED: {tier}: {what}", red=True, bold=True)
        elif c["skipped"]:
            write(f"{tier}: {c['skipped']} of {ran + c['skipped']} skipped", yellow=True, bold=True)
        for reason, n in reasons[tier].most_common(_REASONS):
            write(f"    {n:>4} x {reason}")
        if len(reasons[tier]) > _REASONS:
            write(f"    ... {len(reasons[tier]) - _REASONS} more (pytest -rs lists every skip)")


_REASONS = 5  # skip reasons shown per tier

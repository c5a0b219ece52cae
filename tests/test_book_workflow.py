"""The GitHub Actions workflow that builds the book in real mode and publishes it is valid YAML with the needed steps."""

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "book.yml"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def test_parses_with_jobs(workflow):
    assert isinstance(workflow, dict) and workflow.get("name") == "book"
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in triggers and "workflow_dispatch" in triggers
    assert set(workflow["jobs"]) == {"build", "deploy"}


def test_build_job_runs_real_mode_and_uploads(workflow):
    build = workflow["jobs"]["build"]
    assert build["env"]["SCLIP_BOOK_MODE"] == "real"
    runs = [s.get("run", "") for s in build["steps"]]
    uses = [s.get("uses", "") for s in build["steps"]]
    assert any("make test" in r for r in runs)
    assert any("make book" in r for r in runs)
    assert any("apt-get install -y chromium" in r for r in runs)
    assert any("poppler-utils" in r for r in runs)  # the PDF check renders pages with pdftoppm
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"


def test_deploy_job_publishes_pages(workflow):
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    perms = workflow["permissions"]
    assert perms["pages"] == "write" and perms["id-token"] == "write"


def test_real_build_uses_full_counts_and_a_complete_execution_cache_key(workflow):
    build = workflow["jobs"]["build"]
    assert "SCLIP_BOOK_IMAGES" not in build["env"] and "SCLIP_BOOK_TEMPLATES" not in build["env"]
    assert "SCLIP_BOOK_HUB" not in build["env"]  # the published site comes from the real hub
    assert build["timeout-minutes"] <= 360
    assert build["env"]["SCLIP_BOOK_EXECUTION_CACHE"] == "keep"  # build_book.py then keeps _build/.jupyter_cache
    restore = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/cache/save@"))
    # the executed chapters and the explorers' files they staged travel together (book/_ext/explorer_data.py)
    assert restore["with"]["path"] == save["with"]["path"]
    assert restore["with"]["path"].split() == ["_build/.jupyter_cache", "_build/explorer-data"]
    assert save.get("if") == "always()" and save["with"]["key"] == restore["with"]["key"]
    for part in ("sclip_lib/**", "book/**", "scripts/**", "requirements-lock.txt", "_config.yml"):
        assert part in restore["with"]["key"] and part in restore["with"]["restore-keys"]
    book = next(s for s in build["steps"] if s.get("run") == "make book")
    assert book["timeout-minutes"] < build["timeout-minutes"]  # the save step still runs after a timeout


def test_cell_timeout_fits_a_full_count_evaluation_cell():
    """Chapter 7 evaluates every benchmark in one cell: ~1 h on 2 cores in real mode at full counts
    (benchmarks/bench_book_real.py), so the 20-minute cell timeout the book had would fail the Pages build."""
    config = yaml.safe_load((WORKFLOW.parents[2] / "_config.yml").read_text())
    assert config["execute"]["timeout"] >= 2 * 3600

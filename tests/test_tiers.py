"""The test tiers (tests/conftest.py): each test's tier marker, `-m` selecting one tier, and the summary table,
checked on small suites run by pytest itself (pytester) through the same hooks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parents[1]

# the inner suite's conftest uses this project's hooks, not copies of them
HOOKS = "from tests.conftest import pytest_collection_modifyitems, pytest_terminal_summary  # noqa: F401\n"
INI = """[pytest]
markers =
    library: l
    book: b
    site: s
"""


@pytest.fixture
def suite(pytester):
    pytester.makeini(INI)
    pytester.makeconftest(HOOKS)
    pytester.makepyfile(
        test_segmenter="def test_a():\n    pass\n\ndef test_b():\n    assert False\n",
        test_book=(
            "import pytest\n\ndef test_c():\n    pass\n\n"
            "@pytest.mark.skip(reason='needs jupytext')\ndef test_d():\n    pass\n"
        ),
        test_book_site=(
            "import pytest\n\n@pytest.fixture\ndef site():\n    pytest.skip('no built book: run `make book` first')\n\n"
            "@pytest.mark.parametrize('page', range(3))\ndef test_page(site, page):\n    pass\n\n"
            "def test_other(site):\n    pass\n"
        ),
    )
    return pytester


def tier_rows(result) -> dict[str, list[int]]:
    """{tier: [passed, failed, skipped(, deselected)]} from the table the summary printed."""
    rows = {}
    for line in result.outlines:
        m = re.fullmatch(r"(library|book|site) +(\d+) passed +(\d+) failed +(\d+) skipped(?: +(\d+) deselected)?", line)
        if m:
            rows[m[1]] = [int(n) for n in m.groups()[1:] if n is not None]
    return rows


def test_table_counts_each_tier_and_shouts_when_one_ran_nothing(suite):
    result = suite.runpytest()
    result.assert_outcomes(passed=2, failed=1, skipped=5)
    assert tier_rows(result) == {"library": [1, 1, 0], "book": [1, 0, 1], "site": [0, 0, 4]}
    out = result.stdout.str()
    assert "TIER NOT EXERCISED: site: all 4 skipped" in out
    assert "4 x no built book: run `make book` first" in out
    assert "book: 1 of 2 skipped" in out and "1 x needs jupytext" in out
    assert "TIER NOT EXERCISED: library" not in out and "TIER NOT EXERCISED: book" not in out


def test_marker_selects_one_tier_and_the_rest_show_as_deselected(suite):
    result = suite.runpytest("-m", "book")
    result.assert_outcomes(passed=1, skipped=1, deselected=6)
    assert tier_rows(result) == {"library": [0, 0, 0, 2], "book": [1, 0, 1], "site": [0, 0, 0, 4]}
    out = result.stdout.str()
    assert "TIER NOT EXERCISED: library: 2 deselected" in out
    assert "TIER NOT EXERCISED: site: 4 deselected" in out


def test_a_tier_with_no_test_in_the_run_is_named(suite):
    result = suite.runpytest("test_segmenter.py")
    assert "TIER NOT EXERCISED: book: no test of this tier was collected" in result.stdout.str()
    assert "TIER NOT EXERCISED: site: no test of this tier was collected" in result.stdout.str()


def test_a_file_skipped_at_collection_counts_in_its_tier(pytester):
    pytester.makeini(INI)
    pytester.makeconftest(HOOKS)
    pytester.makepyfile(test_book_workflow="import pytest\nyaml = pytest.importorskip('no_such_module_here')\n")
    result = pytester.runpytest()
    assert tier_rows(result)["book"] == [0, 0, 1]
    assert "TIER NOT EXERCISED: book: all 1 skipped" in result.stdout.str()
    assert "no_such_module_here" in result.stdout.str()


def test_no_table_when_only_collecting(suite):
    result = suite.runpytest("--collect-only", "-q")
    assert "test tiers" not in result.stdout.str() and "TIER NOT EXERCISED" not in result.stdout.str()


def test_every_real_test_file_has_the_tier_its_name_says(request):
    names = {p.name: conftest.tier_of(f"tests/{p.name}::t") for p in (ROOT / "tests").glob("test_*.py")}
    assert names["test_book_site.py"] == "site" and names["test_colab_notebooks.py"] == "book"
    assert names["test_book_assets.py"] == "book" and names["test_book_student.py"] == "book"
    assert names["test_segmenter.py"] == "library" and names["test_tiers.py"] == "library"
    # this test's own item carries its marker
    assert request.node.get_closest_marker("library") is not None


def test_site_tier_runs_after_every_book_build():
    """scripts/build_book.py runs SITE_TESTS after a build: every site-tier file must be among them."""
    tree = ast.parse((ROOT / "scripts" / "build_book.py").read_text())
    site_tests = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SITE_TESTS" for t in node.targets)
    )
    assert conftest.SITE_FILES <= {Path(p).name for p in site_tests}
    assert all((ROOT / "tests" / name).exists() for name in conftest.SITE_FILES)


def test_markers_are_registered(pytestconfig):
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(conftest.TIERS) <= registered

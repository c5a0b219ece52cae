# The two commands of the README. Each sets itself up on a fresh machine: `.venv` is created from
# the pinned lock the first time (and again whenever the lock or pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= python3
# The site's own MathJax (issue 14): the npm package pinned in package-lock.json, copied into _static by the build.
MATHJAX := node_modules/mathjax/es5/tex-mml-chtml.js

.PHONY: test lint format book book-student pdf setup clean notebooks colab-check

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# The layer contracts first (pyproject.toml [tool.importlinter]: imports go one way, no cycles), then the
# tests; the summary at the end counts each tier (library, book, site) and says loudly which ran nothing.
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

# ruff, configured in pyproject.toml: the linter, then the formatter in check mode (`make format` applies it).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

# Decides real or smoke mode (scripts/build_book.py says which and why), executes every chapter with
# Sphinx warnings as errors, then opens the built pages in headless Chromium (tests/test_book_site.py).
book: $(STAMP) $(MATHJAX)
	$(PY) scripts/build_book.py

# The student edition alone (every solution removed) into _build/student/_build/html; `make book` builds it too.
book-student: $(STAMP) $(MATHJAX)
	$(PY) scripts/build_book.py --edition student

# The book as one PDF, _build/pdf/sclip-book.pdf (checked: every chapter, pages not blank); `make book` builds it too.
pdf: $(STAMP) $(MATHJAX)
	$(PY) scripts/build_book.py --pdf

# The chapters' Colab copies, generated from book/*.md: notebooks/*.ipynb (reading edition, solutions folded) and
# notebooks/student/*.ipynb (no solutions); the set-up cell from notebooks/colab_setup.py. Commit them.
notebooks: $(STAMP)
	$(PY) scripts/notebooks.py

# The Colab path as Colab runs it: a fresh venv (torch only), the set-up cell's pip install from this repository's
# git URL (its committed HEAD), two Colab copies top to bottom in smoke mode (scripts/colab_check.py; CI runs it).
colab-check: $(STAMP)
	$(PY) scripts/colab_check.py

# `npm ci` installs exactly the locked version (sha512-checked); npm comes with Node.js, and as root on
# Debian/Ubuntu it is installed here when missing.
$(MATHJAX): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		echo "installing npm for the bundled MathJax (apt-get install npm)" && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; } || \
		{ echo "error: make book needs npm (Node.js) to bundle MathJax: install Node.js, then run make book again" >&2; exit 2; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf _build node_modules

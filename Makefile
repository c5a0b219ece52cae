# The two commands of the README. Each sets itself up on a fresh machine: `.venv` is created from
# the pinned lock the first time (and again whenever the lock or pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= python3

.PHONY: test book book-student pdf setup clean notebooks

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Decides real or smoke mode (scripts/build_book.py says which and why), executes every chapter with
# Sphinx warnings as errors, then opens the built pages in headless Chromium (tests/test_book_site.py).
book: $(STAMP)
	$(PY) scripts/build_book.py

# The student edition alone (every solution removed) into _build/student/_build/html; `make book` builds it too.
book-student: $(STAMP)
	$(PY) scripts/build_book.py --edition student

# The book as one PDF, _build/pdf/sclip-book.pdf (checked: every chapter, pages not blank); `make book` builds it too.
pdf: $(STAMP)
	$(PY) scripts/build_book.py --pdf

# The chapters' Colab copies: notebooks/*.ipynb from book/*.md (jupytext pairs; the set-up cell from notebooks/colab_setup.py).
notebooks: $(STAMP)
	$(PY) scripts/notebooks.py

clean:
	rm -rf _build

# Simple CNN: one Makefile for readers, maintainers and CI.
#
#   make book    build the HTML book (creates .venv on first use)   -> _build/html/index.html
#   make test    run every test: ruff, pytest for src/, nbval over every notebook (the
#                reader's budgets), then the built book in headless Chromium
#   make lint    ruff: lint and format check of src/, tests/, bench/ and the notebooks
#   make lab     open the notebooks in JupyterLab
#   make train   train the Simple CNN from the command line (full MNIST)
#   make bench   time the original guide's training loop against the fast path (3 seeds)
#   make bench-step  one training step, setting by setting (dropout, precision, memory format)
#
# The notebooks have one budget, the reader's: tests and the book run exactly what a reader runs.

PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
JOBS    ?= 2
PYTEST_ARGS ?=

# This checkout's src/ comes first on the import path, for tests, notebooks and the book.
export PYTHONPATH := $(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH))

# Data root shared by the CLI, tests and notebooks (torchvision downloads MNIST here).
export SIMPLECNN_DATA ?= $(CURDIR)/data

BOOK_DIR := _build
BOOK_OUT := $(BOOK_DIR)/html
# The execution cache is keyed on the notebooks alone: when anything under src/ changes
# (Python, JavaScript, CSS, weights) it is started afresh, so the book never shows outputs of
# older code.
SRC_HASH    = $(shell find src -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | LC_ALL=C sort \
                | xargs sha256sum | sha256sum | cut -c1-16)

.PHONY: help env vendor book test lint test-py test-browser test-unit test-notebooks lab train bench bench-step clean

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

# The virtual environment: pinned packages from requirements.txt plus this repository's
# `simplecnn` package in editable mode. Rebuilt when either file changes.
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

env: $(BIN)/.installed

# Browser files the book serves itself, so a page never loads anything from another site:
# MathJax (equations; _config.yml points mathjax_path at this copy) and, for the browser tests,
# axe-core. Exact versions from the npm registry (published versions never change), fetched once
# with `npm pack` (no dependencies, no install scripts) into _build/vendor.
MATHJAX_VERSION := 3.2.2
AXE_VERSION     := 4.10.3
VENDOR          := _build/vendor
VENDOR_STAMP    := $(VENDOR)/.mathjax-$(MATHJAX_VERSION)-axe-$(AXE_VERSION)

$(VENDOR_STAMP):
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/static/mathjax $(VENDOR)/axe-core
	cd $(VENDOR) && npm pack --silent mathjax@$(MATHJAX_VERSION) axe-core@$(AXE_VERSION) >/dev/null
	tar -xzf $(VENDOR)/mathjax-$(MATHJAX_VERSION).tgz -C $(VENDOR)/static/mathjax --strip-components=1
	tar -xzf $(VENDOR)/axe-core-$(AXE_VERSION).tgz -C $(VENDOR)/axe-core --strip-components=1
	rm $(VENDOR)/*.tgz
	touch $@

vendor: $(VENDOR_STAMP)

# The figures of the theory pages, drawn by code (the same bytes on every run).
.PHONY: figures
figures: env
	$(BIN)/python chapters/figures/make_figures.py

# The source hash is written before the build, so a failed build keeps the cached notebooks
# that did execute: the next build runs only those that failed or changed.
book: env vendor figures
	@if [ -d $(BOOK_DIR)/.doctrees -o -d $(BOOK_DIR)/.jupyter_cache ] \
	  && [ "$$(cat $(BOOK_DIR)/.src-hash 2>/dev/null)" != "$(SRC_HASH)" ]; then \
	  echo "src/ changed: executing the notebooks afresh"; rm -rf $(BOOK_DIR)/.jupyter_cache $(BOOK_DIR)/.doctrees; fi
	@mkdir -p $(BOOK_DIR) && echo "$(SRC_HASH)" > $(BOOK_DIR)/.src-hash
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is at $(BOOK_OUT)/index.html"

# Style first: it takes seconds. Then one thread per process: with JOBS parallel workers on a
# small machine, more threads each only fight over the cores. Then the book is built (the same
# build as `make book`, with its cache) and checked in headless Chromium.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800
test: lint test-py test-browser

lint: env
	$(BIN)/ruff check src tests bench notebooks chapters/figures
	$(BIN)/ruff format --check src tests bench notebooks chapters/figures

test-py: env
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL) --ignore=tests/browser \
		tests notebooks $(PYTEST_ARGS)

test-browser: env vendor
	$(MAKE) book
	SIMPLECNN_BOOK_HTML=$(CURDIR)/$(BOOK_OUT) SIMPLECNN_AXE=$(CURDIR)/$(VENDOR)/axe-core/axe.min.js \
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

test-unit: env
	$(BIN)/python -m pytest --ignore=tests/browser tests $(PYTEST_ARGS)

test-notebooks: env
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL) notebooks $(PYTEST_ARGS)

lab: env
	$(BIN)/jupyter lab notebooks

train: env
	$(BIN)/python -m cnnkit train $(ARGS)

# Side-by-side timing of the guide's loop and the fast path (3 seeds); BENCH_ARGS=--quick for
# one short seed. See bench/bench_training.py.
bench: env
	$(BIN)/python bench/bench_training.py $(BENCH_ARGS)

# Milliseconds per training step for each combination of dropout, precision and memory format.
# See bench/bench_step.py.
bench-step: env
	$(BIN)/python bench/bench_step.py $(BENCH_ARGS)

clean:
	rm -rf _build .pytest_cache

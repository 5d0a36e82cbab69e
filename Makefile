# Simple CNN: one Makefile for readers, maintainers and CI.
#
#   make book    build the HTML book (creates .venv on first use)   -> _build/html/index.html
#   make test    run every test: pytest for src/, nbval over every notebook (fast mode),
#                then the book (fast mode) in headless Chromium
#   make lab     open the notebooks in JupyterLab
#   make train   train the Simple CNN from the command line (full MNIST)
#
# Fast mode (SIMPLECNN_FAST=1) gives every notebook a short training budget; `make test` uses
# it by default (FAST=0 for the reader settings). `make book` uses the reader settings unless
# FAST=1, and keeps a separate execution cache per mode.

PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
FAST    ?=
JOBS    ?= 2
PYTEST_ARGS ?=

# This checkout's src/ comes first on the import path, for tests, notebooks and the book.
export PYTHONPATH := $(CURDIR)/src$(if $(PYTHONPATH),:$(PYTHONPATH))

# Data root shared by the CLI, tests and notebooks (torchvision downloads MNIST here).
export SIMPLECNN_DATA ?= $(CURDIR)/data

# Fast-mode builds go to their own folder so their execution cache never feeds a reader build.
BOOK_DIR := $(if $(filter 1,$(FAST)),_build/fast/_build,_build)
BOOK_OUT := $(BOOK_DIR)/html
BOOK_FLAGS := $(if $(filter 1,$(FAST)),--path-output _build/fast,)

.PHONY: help env book test test-py test-browser test-unit test-notebooks lab train clean

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

# The virtual environment: pinned packages from requirements.txt plus this repository's
# `simplecnn` package in editable mode. Rebuilt when either file changes.
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

env: $(BIN)/.installed

# The execution cache is keyed on each notebook's code only. Notebooks also run src/, so when
# src/ changes the cache is dropped and every notebook is executed again.
book: env
	@mkdir -p $(BOOK_DIR); src_hash=$$(cat src/*.py | sha256sum | cut -c1-16); \
	if [ "$$(cat $(BOOK_DIR)/.src-hash 2>/dev/null)" != "$$src_hash" ]; then \
		rm -rf $(BOOK_DIR)/.jupyter_cache; echo "$$src_hash" > $(BOOK_DIR)/.src-hash; fi
	SIMPLECNN_FAST=$(FAST) $(BIN)/jupyter-book build . $(BOOK_FLAGS) -W --keep-going
	@echo "The book is at $(BOOK_OUT)/index.html"

# One thread per process: with JOBS parallel workers on a small machine, more threads each
# only fight over the cores. Then the book is built in fast mode and checked in headless Chromium.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800
test: test-py test-browser

test-py: env
	SIMPLECNN_FAST=$(if $(FAST),$(FAST),1) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL) --ignore=tests/browser \
		tests notebooks $(PYTEST_ARGS)

test-browser: env
	$(MAKE) book FAST=1
	SIMPLECNN_BOOK_HTML=$(CURDIR)/_build/fast/_build/html $(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

test-unit: env
	SIMPLECNN_FAST=1 $(BIN)/python -m pytest --ignore=tests/browser tests $(PYTEST_ARGS)

test-notebooks: env
	SIMPLECNN_FAST=$(if $(FAST),$(FAST),1) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL) notebooks $(PYTEST_ARGS)

lab: env
	$(BIN)/jupyter lab notebooks

train: env
	$(BIN)/python -m simplecnn train $(ARGS)

clean:
	rm -rf _build .pytest_cache

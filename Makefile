# Simple CNN: one Makefile for readers, maintainers and CI.
#
#   make book    build the HTML book (creates .venv on first use)   -> _build/html/index.html
#   make test    run every test: pytest for src/, then nbval over every notebook (fast mode)
#   make lab     open the notebooks in JupyterLab
#   make train   train the Simple CNN from the command line (full MNIST)
#   make bench   time the original guide's training loop against the fast path (3 seeds, ~15 min)
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
BOOK_OUT := $(if $(filter 1,$(FAST)),_build/fast/_build/html,_build/html)
BOOK_FLAGS := $(if $(filter 1,$(FAST)),--path-output _build/fast,)

.PHONY: help env book test test-unit test-notebooks lab train bench clean

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

# The virtual environment: pinned packages from requirements.txt plus this repository's
# `simplecnn` package in editable mode. Rebuilt when either file changes.
$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

env: $(BIN)/.installed

book: env
	SIMPLECNN_FAST=$(FAST) $(BIN)/jupyter-book build . $(BOOK_FLAGS) -W --keep-going
	@echo "The book is at $(BOOK_OUT)/index.html"

# One thread per process: with JOBS parallel workers on a small machine, more threads each
# only fight over the cores.
test: env
	SIMPLECNN_FAST=$(if $(FAST),$(FAST),1) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=1800 tests notebooks $(PYTEST_ARGS)

test-unit: env
	SIMPLECNN_FAST=1 $(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-notebooks: env
	SIMPLECNN_FAST=$(if $(FAST),$(FAST),1) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=1800 notebooks $(PYTEST_ARGS)

lab: env
	$(BIN)/jupyter lab notebooks

train: env
	$(BIN)/python -m simplecnn train $(ARGS)

# Side-by-side timing of the guide's loop and the fast path (3 seeds); BENCH_ARGS=--quick for
# one short seed. See bench/bench_training.py.
bench: env
	$(BIN)/python bench/bench_training.py $(BENCH_ARGS)

clean:
	rm -rf _build .pytest_cache

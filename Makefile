# gapkit: two commands do everything on a fresh machine with Python 3.11.
#   make book   -> venv, install, execute every chapter with papermill (PROFILE=quick|full), render _build/html
#   make test   -> venv, install, pytest, then nbval executes every chapter once (quick profile) and
#                  compares the cells tagged nbval-check-output with the committed outputs
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
SEED ?= 0
NOTEBOOKS := $(shell sed -n 's/^ *- file: *\(book\/[a-z0-9_]*\) *$$/\1.ipynb/p' _toc.yml | while read f; do [ -f "$$f" ] && echo "$$f"; done)
# The shared data folder sits beside the checkout on project machines; elsewhere set GAPKIT_DATA_DIR yourself.
SHARED_DATA := $(abspath ../shared/data)
export GAPKIT_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export PYTHONHASHSEED := 0

.PHONY: install book execute html reproduction test unit notebooks nbval benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: a bare 'torch' requirement would pull a multi-GB CUDA build here
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e ".[test]"
	touch $@

book: install execute html

execute: install
	@mkdir -p _build/logs
	for nb in $(NOTEBOOKS); do \
	  echo "== papermill $$nb (profile=$(PROFILE))"; \
	  $(BIN)/papermill "$$nb" "$$nb" --cwd book -p profile $(PROFILE) -p seed $(SEED) \
	    --log-level WARNING || exit 1; \
	done

# Renders the executed notebooks, then checks that the book works offline: no page may load a script or
# stylesheet from outside _build/html (MathJax is served from the build by sphinx-mathjax-offline).
html: install
	$(BIN)/jupyter-book build . --builder html
	@test -f _build/html/index.html && echo "Book: _build/html/index.html"
	$(BIN)/python .ci/check_offline.py _build/html

# Re-executes the reproduction page alone (seconds): run it after committing a new record in results/.
reproduction: install
	$(BIN)/papermill book/reproduction.ipynb book/reproduction.ipynb --cwd book --log-level WARNING

# Each chapter is executed once, by nbval: its committed `parameters` cell (profile quick) is the
# parameterised run, and its checked cells must reproduce the committed outputs.
# (tests/test_book.py checks that every chapter takes papermill's parameters.)
test: install unit nbval
	@git status --porcelain --untracked-files=normal | grep '^??' && { echo "the tests left untracked files"; exit 1; } || true

unit: install
	$(BIN)/python -m pytest tests -q

# Optional, not part of `make test`: executes each chapter with papermill (quick profile) into _build/.
notebooks: install
	@mkdir -p _build/papermill
	for nb in $(NOTEBOOKS); do \
	  echo "== papermill $$nb"; \
	  $(BIN)/papermill "$$nb" "_build/papermill/$$(basename $$nb)" --cwd book -p profile quick \
	    --log-level WARNING || exit 1; \
	done

# Executes the committed notebooks and compares the cells tagged nbval-check-output; prints the slowest.
nbval: install
	cd book && ../$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with ../.ci/nbval_sanitize.cfg \
	  -p no:cacheprovider -q --durations=5 $(notdir $(NOTEBOOKS))

benchmark: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf _build

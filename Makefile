# Two commands for a fresh machine with Python 3.11 and make:
#   make repro   # build .venv if needed, run the whole DVC pipeline on the embedded demo data
#   make test    # build .venv if needed, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: repro test test-fast lint pipelines bench bench-quick uci negative-control docs clean-venv

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH; install Python 3.11" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# DVC stages call `csat-triage`, so the venv's bin goes first on PATH.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# Two workers (the machine has 2 cores); a test module stays on one worker so its fixtures are built once.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# ruff (a small rule set, pyproject.toml) and the import contract; .ci/run calls this before make test.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# dvc.yaml and realdata/*/dvc.yaml are rendered from one definition (tools/render_dvc.py).
pipelines: $(STAMP)
	$(BIN)/python tools/render_dvc.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes 10000 100000 1000000

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes 10000

clean-venv:
	rm -rf $(VENV)

# Real data from ../shared/datasets (see realdata/README.md).
uci: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro realdata/servicenow/dvc.yaml

negative-control: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro realdata/negative_control/dvc.yaml

docs: $(STAMP)
	$(BIN)/python tools/update_readme.py

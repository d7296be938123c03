# Two commands for a fresh machine with Python 3.11 and make:
#   make demo   create .venv, install diffhep, run the main job on the CPU
#   make test   same install plus the test extra, then pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The main job runs on the CPU even where a GPU is visible.
export JAX_PLATFORMS ?= cpu

.PHONY: demo test test-slow test-all bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/diffhep info
	$(BIN)/diffhep fit-alphas --events 100000 --out runs/demo

# Two worker processes (pytest-xdist), whole files per worker: the suite runs on both
# cores, and no process accumulates the JIT code of all tests (XLA does not return it;
# one process running the whole suite was seen to crash in a late compilation).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadfile -m slow

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 --dist loadfile -m 'slow or not slow'

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py all

clean:
	rm -rf $(VENV) runs .pytest_cache

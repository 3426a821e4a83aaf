# Quick start:  make demo   (set up, classify the bundled samples with the default model)
#               make test   (set up, run the tests)
# Inner loop:   make test-quick (the unit tier, no integration/ or slow tests), make lint
VENV ?= .venv
PYTHON ?= python3
# This machine's PyTorch is a local CPU build of 2.13.0; elsewhere override, e.g. TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test test-quick lint clean realdata bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(BIN)/tumorclassifier demo --out demo_output

test: setup
	$(BIN)/python -m pytest -q

test-quick: setup
	$(BIN)/python -m pytest -q -m "not integration and not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo_output .pytest_cache benchmarks/.work

realdata: setup
	$(BIN)/python scripts/run_realdata.py

# Benchmarks (benchmarks/README.md); BENCH_ARGS e.g. "--device cuda" or "--quick"
bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Newcomer entry points: `make example` (set up + run the synthetic study end to end) and
# `make test` (set up + run the test suite). Both create ./.venv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE_DIR ?= example_study
EXAMPLE_OUT ?= example_output
NPROCS ?= 2

.PHONY: setup test test-fast example example-small lint bench container-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not slow"

example: setup
	$(BIN)/python examples/run_example.py --study-dir $(EXAMPLE_DIR) --output-dir $(EXAMPLE_OUT) --nprocs $(NPROCS)

example-small: setup
	$(BIN)/python examples/run_example.py --small --study-dir $(EXAMPLE_DIR)-small --output-dir $(EXAMPLE_OUT)-small --nprocs $(NPROCS)

lint: setup
	$(BIN)/ruff check bids_app petsim tests benchmarks examples
	$(BIN)/ruff format --check bids_app petsim tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_kinetics.py
	$(BIN)/python benchmarks/bench_group_stats.py
	$(BIN)/python benchmarks/bench_participant.py
	$(BIN)/python benchmarks/bench_sim.py

# Build the container image and smoke-test it offline (podman or docker; SKIPs without an engine).
container-test: ; bash scripts/container_test.sh

clean:
	rm -rf $(EXAMPLE_DIR) $(EXAMPLE_OUT) $(EXAMPLE_DIR)-small $(EXAMPLE_OUT)-small bids_app_work

# The two commands of the README's quick start, and the tools behind them.
# `make demo`: set up and run the whole pipeline on the embedded synthetic cohort (CPU, minutes).
# `make test`: set up and run the test suite.
VENV ?= .venv
TORCH ?= torch==2.13.0
CORES ?= 2
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test reproduce lint format

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[workflow,test,dev,slurm]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	snakemake --profile profiles/cpu --cores $(CORES) --configfile config/demo.yaml

reproduce: setup
	snakemake --cores 8 --resources gpu=1

test: setup
	$(PY) -m pytest -q

lint: setup
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	snakefmt --check workflow
	snakemake --lint

format: setup
	ruff format src tests benchmarks
	ruff check --fix src tests benchmarks
	snakefmt workflow

# The two commands of the README's quick start, and the tools behind them.
# `make demo`: set up and run the whole pipeline on the embedded synthetic cohort (CPU, minutes).
# `make test`: set up and run the test suite.
# `make report`: the HTML report of a finished run, as results/<run>/report.html
#   (CONFIG=config/demo.yaml for the demo's; <run> is that config's `results` folder).
VENV ?= .venv
TORCH ?= torch==2.13.0
CORES ?= 2
CONFIG ?= config/config.yaml
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo test report reproduce lint format

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

report: setup
	snakemake --configfile $(CONFIG) --report "$$($(PY) -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["results"])' $(CONFIG))/report.html"

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

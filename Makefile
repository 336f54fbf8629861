# Two commands for a new user:  `make lab`  and  `make test`.
# Uses the active virtualenv/conda environment if there is one, else creates ./.venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
  PY := python
  ENV_STAMP := build/.env-installed-active
else
  PY := .venv/bin/python
  ENV_STAMP := .venv/.workbook-installed
endif
PORT ?= 8888
# Headless runs: progress bars off, no network outside loopback (see tests/_netguard).
HEADLESS := LESSONS_QUIET=1 PYTHONPATH=$(CURDIR)/tests/_netguard
# A laptop without AVX-512: oneDNN and ATen restricted to AVX2 (onnxruntime cannot be restricted; its int8
# kernel without VNNI is emulated by lessons_lib.quant.x86int8 in tests/test_quant_x86int8.py).
PORTABLE := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2

.PHONY: help env lab test test-portable unit run notebooks browser-deps clean bench

help:
	@echo "make lab    - create the environment if needed and start JupyterLab on notebooks/"
	@echo "make test   - create the environment if needed and run every test (unit, notebooks, nbval, browser,"
	@echo "              then test-portable)"
	@echo "make test-portable - nbval of every notebook with oneDNN / ATen restricted to AVX2 (a CPU without AVX-512)"
	@echo "make run    - execute every notebook headless into build/executed/, report in build/report.md"
	@echo "make notebooks NB=01 - re-execute notebooks/src/NN_*.py into notebooks/NN_*.ipynb (authors)"

.venv/bin/python:
	python3 -m venv .venv

$(ENV_STAMP): pyproject.toml constraints.txt | $(if $(filter .venv/bin/python,$(PY)),.venv/bin/python)
	@mkdir -p build
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) tools/configure_lab.py
	@touch $@

env: $(ENV_STAMP)

lab: $(ENV_STAMP)
	$(PY) -m jupyter lab --notebook-dir=notebooks --port=$(PORT) --no-browser \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

browser-deps: $(ENV_STAMP)
	@bash tools/browser_deps.sh

test: $(ENV_STAMP) browser-deps
	$(HEADLESS) $(PY) -m pytest
	$(MAKE) --no-print-directory test-portable

test-portable: $(ENV_STAMP)
	$(HEADLESS) $(PORTABLE) $(PY) -m pytest notebooks

unit: $(ENV_STAMP)
	$(HEADLESS) $(PY) -m pytest tests -m "not notebook and not browser"

run: $(ENV_STAMP)
	$(HEADLESS) $(PY) -m lessons_lib.course run $(if $(FAST),--fast) $(if $(FORCE),--force)

notebooks: $(ENV_STAMP)
	$(PY) tools/build_notebooks.py $(NB)

clean:
	rm -rf build

bench: $(ENV_STAMP)
	@for b in benchmarks/bench_*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(HEADLESS) $(PY) "$$b" || exit 1; done

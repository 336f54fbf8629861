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
# make test JOBS=4: pytest-xdist workers; every notebook's cells stay on one worker (--dist loadfile).
XDIST := $(if $(JOBS),-n $(JOBS) --dist loadfile)
# Headless runs: progress bars off, no network outside loopback (see tests/_netguard).
HEADLESS := LESSONS_QUIET=1 PYTHONPATH=$(CURDIR)/tests/_netguard
# A laptop without AVX-512: oneDNN and ATen restricted to AVX2 (onnxruntime cannot be restricted; its int8
# kernel without VNNI is emulated by lessons_lib.quant.x86int8 in tests/test_quant_x86int8.py).
PORTABLE := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2

.PHONY: help env lab test test-portable unit run notebooks browser-deps clean bench lock

help:
	@echo "make lab    - create the environment if needed and start JupyterLab on notebooks/"
	@echo "make test   - create the environment if needed and run every test (unit, notebooks, nbval, browser,"
	@echo "              then test-portable)"
	@echo "make test-portable - nbval of every notebook with oneDNN / ATen restricted to AVX2 (a CPU without AVX-512)"
	@echo "make run    - execute every notebook headless into build/executed/, report in build/report.md"
	@echo "make notebooks NB=01 - re-execute notebooks/src/NN_*.py into notebooks/NN_*.ipynb (authors)"
	@echo "make lock   - resolve pyproject.toml's ranges in a fresh venv and write every version to constraints.txt"
	@echo "make test BROWSER=0 - skip the browser test on purpose (otherwise a missing Chromium fails it)"
	@echo "make test JOBS=4 - run the tests (notebooks included, one notebook per worker) on 4 pytest-xdist workers"

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

test: $(ENV_STAMP) $(if $(filter 0,$(BROWSER)),,browser-deps)
	$(HEADLESS) $(if $(BROWSER),BROWSER=$(BROWSER)) $(PY) -m pytest $(XDIST)
	$(MAKE) --no-print-directory test-portable

test-portable: $(ENV_STAMP)
	$(HEADLESS) $(PORTABLE) $(PY) -m pytest notebooks $(XDIST)

unit: $(ENV_STAMP)
	$(HEADLESS) $(PY) -m pytest tests -m "not notebook and not browser" $(XDIST)

run: $(ENV_STAMP)
	$(HEADLESS) $(PY) -m lessons_lib.course run $(if $(FAST),--fast) $(if $(FORCE),--force)

notebooks: $(ENV_STAMP)
	$(PY) tools/build_notebooks.py $(NB)

clean:
	rm -rf build

bench: $(ENV_STAMP)
	@for b in benchmarks/bench_*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(HEADLESS) $(PY) "$$b" || exit 1; done

# Every direct and transitive version, resolved afresh from pyproject.toml's ranges (then re-run
# make notebooks and make test before committing the new constraints.txt).
lock:
	rm -rf build/lock-venv && python3 -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet ".[test]"
	{ echo "# The versions the committed notebook outputs were produced and tested with (Python 3.11, Linux x86_64)."; \
	  echo "# make env / make test install with \`pip install -c constraints.txt\`; regenerate with \`make lock\`."; \
	  build/lock-venv/bin/pip freeze --exclude cnn-compression-workbook; } > constraints.txt
	rm -rf build/lock-venv

# Forge: `make demo` runs a distillation cycle on the embedded default; `make test` runs the whole suite.
# Setup is idempotent and part of both: it rebuilds only what changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.forge-installed

.PHONY: setup test demo bench clean

setup: $(STAMP) node_modules/.package-lock.json

# torch is pinned and installed first: a looser spec, asked for by any later package, pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml gpu-trainer/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# pip 23's resolver gives up (InconsistentCandidate) on the Azure SDKs' OpenTelemetry pins; newer ones resolve.
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25"
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,azureml]"
	$(PY) -m pip install --quiet --disable-pip-version-check -e "./gpu-trainer[dev]"
	touch $(STAMP)

# Azurite (the storage emulator) and tiktoken's offline ranks come from npm, locked.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

test: setup
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/forge demo

bench: setup
	$(PY) bench/import_bench.py
	$(PY) bench/curate_bench.py
	$(PY) bench/inference_client_bench.py
	$(PY) bench/trainer_bench.py
	$(PY) bench/orchestration_bench.py
	$(PY) bench/router_bench.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache

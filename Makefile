# Forge: `make demo` runs a distillation cycle on the embedded default; `make test` runs the whole suite.
# Setup is idempotent and part of both: it rebuilds only what changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.forge-installed

.PHONY: setup test demo bench clean bubblewrap chromium screenshots

setup: bubblewrap chromium $(STAMP) node_modules/.package-lock.json

# Model-written benchmark code runs in a bubblewrap jail (docs/sandbox.md). Installed here when missing and root
# can; otherwise setup stops with the command. macOS has none: see FORGE_SANDBOX_UNJAILED in docs/sandbox.md.
bubblewrap:
	@command -v bwrap >/dev/null || [ "$$(uname -s)" != Linux ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap (the code sandbox)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } >/dev/null 2>&1 \
	      || { echo "apt-get could not install bubblewrap; run:  apt-get install -y bubblewrap" >&2; exit 1; }; \
	  else \
	    echo "bubblewrap (the code sandbox) is missing; install it:  sudo apt-get install -y bubblewrap" >&2; \
	    exit 1; \
	  fi; }

# The dashboard's browser tests drive Debian's chromium through Playwright (tests/browser); Playwright's own browser
# download is never used. Installed here when missing and root can; otherwise setup stops with the command.
chromium:
	@command -v chromium >/dev/null || [ "$$(uname -s)" != Linux ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (the dashboard's browser tests)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
	      || { echo "apt-get could not install chromium; run:  apt-get install -y chromium" >&2; exit 1; }; \
	  else \
	    echo "chromium (the dashboard's browser tests) is missing; install it:  sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; }

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

# The README's dashboard screenshots (docs/dashboard-*.png), from a real run in a temporary FORGE_HOME.
screenshots: setup
	$(PY) -m tests.browser.screenshots

bench: setup
	$(PY) bench/import_bench.py
	$(PY) bench/curate_bench.py
	$(PY) bench/inference_client_bench.py
	$(PY) bench/trainer_bench.py
	$(PY) bench/orchestration_bench.py
	$(PY) bench/router_bench.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache

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

# llama.cpp (docs/serving.md): llama-cpp-python builds it from source (the embedded LoRA server, the quantizer) and
# its sdist carries llama.cpp's GGUF converter scripts, which its wheel leaves out; both come from one pinned sdist.
# CPU only; a few minutes on two cores, once (the stamp names the version).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_SDIST   := $(VENV)/llama-cpp-sdist/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz
LLAMA_STAMP       := $(VENV)/.llama-cpp-$(LLAMA_CPP_VERSION)
LLAMA_SCRIPTS     := convert_hf_to_gguf.py convert_lora_to_gguf.py conversion gguf-py LICENSE

setup: $(LLAMA_STAMP)

$(LLAMA_STAMP): | $(STAMP)
	rm -rf $(VENV)/llama.cpp $(VENV)/llama-cpp-sdist $(VENV)/.llama-cpp-*
	$(PY) -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
	  llama-cpp-python==$(LLAMA_CPP_VERSION) -d $(VENV)/llama-cpp-sdist
	mkdir -p $(VENV)/llama.cpp
	tar -xzf $(LLAMA_CPP_SDIST) -C $(VENV)/llama.cpp --strip-components=3 \
	  $(addprefix llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/,$(LLAMA_SCRIPTS))
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF" \
	  CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) \
	  $(PY) -m pip install --quiet --disable-pip-version-check $(LLAMA_CPP_SDIST)
	rm -rf $(VENV)/llama-cpp-sdist
	touch $@

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
	$(PY) bench/serve_bench.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache

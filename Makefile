# `make demo` and `make test` work on a fresh clone: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup bench serve browser clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test,onnx,train,demo,video]"
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for tests/test_serve.py's page test: installed with apt-get where that works (root),
# else one line and the test skips; never a failure.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; then :; \
	else echo "make: no chromium/chromedriver (apt-get install chromium chromium-driver as root); the browser test will skip"; fi

test: $(STAMP) browser
	$(PY) -m ruff format --check --quiet poseface tests benchmarks tools
	$(PY) -m ruff check --quiet poseface tests benchmarks tools
	$(PY) -m pytest tests

demo: $(STAMP)
	$(PY) -m poseface.demo

serve: $(STAMP)
	$(PY) -m poseface serve

bench: $(STAMP)
	$(PY) benchmarks/forward.py

clean-venv:
	rm -rf $(VENV)

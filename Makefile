# The two commands a newcomer needs: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: demo test serve bench lint browser clean

$(READY): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(READY)

# Headless Chromium and its driver for the tracker's browser test (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(READY)
	$(PY) -m local.cli demo

serve: $(READY)
	$(PY) -m local.cli serve

lint: $(READY)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(READY) browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

bench: $(READY)
	@command -v wrk >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m bench.run
	$(PY) -m bench.refine_bench --out bench/results/refine.json

clean:
	rm -rf .cdp bench/results

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.make-venv
PYTEST_ARGS ?=

.PHONY: venv browser system-tools run test screenshots lint clean

# The stamp makes `make venv` a no-op until pyproject.toml or constraints.txt change.
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

# Debian's chromium for the dashboard's browser tests (Playwright drives it; it never
# downloads a browser). Installed once, as root, like any other package.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the dashboard browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	}

# Debian packages the store tests use: strace (tests/e2e/test_store_durability.py traces a node's
# syncs and sends) and iproute2 (tests/faults/ builds network namespaces, veth links and tc filters).
system-tools:
	@command -v strace >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || { \
	  echo "installing Debian's strace and iproute2 for the store tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace iproute2 >/dev/null; \
	}

run: venv
	./scripts/run-local.sh

# `lint` first: a type error fails the run before minutes of tests.
test: venv lint browser system-tools
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider --durations=30 $(PYTEST_ARGS)

# docs/screenshots/*.png: every dashboard view, on a fresh 3-node cluster with a real agent.
screenshots: venv browser
	$(VENV)/bin/python scripts/screenshots.py docs/screenshots

# compileall over the whole tree, then mypy --strict over the paths [tool.mypy] in pyproject.toml lists.
lint: venv
	$(VENV)/bin/python -m compileall -q $$(ls -d core cluster backend api agent tests 2>/dev/null)
	$(VENV)/bin/python -m mypy

clean:
	rm -rf $(VENV) .state build *.egg-info

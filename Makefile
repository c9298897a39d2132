SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.make-venv
PYTEST_ARGS ?=

.PHONY: venv run test lint clean

# The stamp makes `make venv` a no-op until pyproject.toml or constraints.txt change.
venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

run: venv
	./scripts/run-local.sh

test: venv
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/python -m compileall -q $$(ls -d cluster backend api agent tests 2>/dev/null)

clean:
	rm -rf $(VENV) .state build *.egg-info

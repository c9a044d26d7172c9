# Two commands on a fresh clone (only Python 3.11, pip and make needed):
#   make run    set up .venv if needed, run the smoke suite, render its report
#   make test   set up .venv if needed, run the test suite
# The set-up is the README's pip line inside .venv, done again only when a pyproject.toml
# changes (the stamp file below), so a second call starts at once.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Keep in step with the README's install line.
INSTALL := -e ".[dev,offline,cpu,mlflow]" -e examples/custom_method
STAMP := $(VENV)/.installed

.PHONY: run test setup

setup: $(STAMP)

$(STAMP): pyproject.toml examples/custom_method/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(INSTALL)
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python bench.py run --suite smoke
	$(BIN)/python bench.py report

test: $(STAMP)
	$(BIN)/python -m pytest

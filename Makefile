# The README's two commands: `make bench` (the main job) and `make test`.
# Both create .venv and install the pinned dependencies on first use only;
# the install is redone only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test perf asv-quick

bench: $(STAMP)
	$(BIN)/dta models

test: $(STAMP)
	$(BIN)/python -m pytest

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

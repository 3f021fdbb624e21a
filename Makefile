# The two set-up commands for a new user: `make demo` and `make test`.
# Both install the Debian packages and a virtual environment on first use.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean

$(STAMP): pyproject.toml scripts/install-system-deps
	./scripts/install-system-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/attestnet demo

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/attestnet bench

# Fuzz one evidence format with atheris: make fuzz FORMAT=dcap SECONDS=300
FORMAT ?= psa
SECONDS ?= 60
fuzz: $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[fuzz]'
	$(VENV)/bin/python fuzz/fuzz_evidence.py $(FORMAT) -max_total_time=$(SECONDS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

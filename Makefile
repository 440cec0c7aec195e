# `make test` and `make demo` work on a fresh machine with only python3:
# each creates .venv when missing and installs the project with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Until the dashboard lands: a summary of synthetic traffic, as `tail --once` prints it.
demo: $(STAMP)
	$(BIN)/python bench/generate.py $(VENV)/demo-access.log --lines 50000
	$(BIN)/logtui tail $(VENV)/demo-access.log --once --top 5 | $(BIN)/python -m json.tool

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache

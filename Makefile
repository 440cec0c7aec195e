# `make test` and `make demo` work on a fresh machine with only python3:
# each creates .venv when missing and installs the project with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_INTEROP := tests/interop/node
NODE_STAMP := $(NODE_INTEROP)/node_modules/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The npm forward client for tests/interop; without npm those tests skip and say why.
$(NODE_STAMP): $(NODE_INTEROP)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(NODE_INTEROP) --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the @fluent-org/logger interop tests will be skipped"; fi

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(STAMP)
	$(BIN)/logtui demo

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/forward_ingest.py
	$(BIN)/python bench/viewer_lag.py
	$(BIN)/python bench/shadow_latency.py
	$(BIN)/python bench/dashboard_latency.py

clean:
	rm -rf $(VENV) .pytest_cache $(NODE_INTEROP)/node_modules

# Darkroom: `make run` serves on http://127.0.0.1:8080; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICES_ENV := .services.env

.PHONY: run test install system-deps services services-down bench clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# torch + transformers for the ML tests: several GB once per machine, then pip's cache serves it.
$(BIN)/.installed-ml: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test,ml]'
	@touch $@

install: $(BIN)/.installed system-deps

system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/darkroom serve --data-dir data

# Start PostgreSQL, Kafka and Elasticsearch (fetching what is missing) and record their addresses.
services:
	@bash scripts/services.sh up

services-down:
	@bash scripts/services.sh down

# tests/test_sdk.py's pinned openapi-typescript and tsc; without npm that check skips (fails in CI).
tests/sdk/node_modules/.installed: tests/sdk/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/sdk --no-audit --no-fund && touch $@; \
	else echo "npm not found: the TypeScript SDK check will skip" >&2; fi

test: install $(BIN)/.installed-ml services tests/sdk/node_modules/.installed
	@bash scripts/system-deps.sh --test
	source $(SERVICES_ENV) && DARKROOM_TEST_DATABASE_URL="$$DARKROOM_DATABASE_URL" $(BIN)/pytest -q

bench: install $(BIN)/.installed-ml services
	$(BIN)/python bench/processing.py
	source $(SERVICES_ENV) && $(BIN)/python bench/kafka.py
	$(BIN)/python bench/library.py
	$(BIN)/python bench/ml.py
	$(BIN)/python bench/library_scan.py
	# Last, so its table closes the output: hot paths, event store and search, ratios vs aims.
	source $(SERVICES_ENV) && $(BIN)/python bench/summary.py

clean:
	rm -rf $(VENV) data .pytest_cache

# Darkroom: `make run` serves on http://127.0.0.1:8080; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL_FILE := .services.env

.PHONY: run test install system-deps services services-down bench clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/.installed system-deps

system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/darkroom serve --data-dir data

# Start PostgreSQL (installing Debian's package when missing) and record its URL.
services:
	@url=$$(bash scripts/postgres.sh) && \
	  printf 'DARKROOM_DATABASE_URL=%s\n' "$$url" > $(PG_URL_FILE) && \
	  echo "services: wrote $(PG_URL_FILE):" && cat $(PG_URL_FILE)

services-down:
	-pg_ctlcluster $$(ls /usr/lib/postgresql | sort -V | tail -n1) main stop

test: install services
	source $(PG_URL_FILE) && DARKROOM_TEST_DATABASE_URL="$$DARKROOM_DATABASE_URL" $(BIN)/pytest -q

bench: install services
	source $(PG_URL_FILE) && DARKROOM_DATABASE_URL="$$DARKROOM_DATABASE_URL" $(BIN)/python bench/event_store.py
	$(BIN)/python bench/processing.py

clean:
	rm -rf $(VENV) data .pytest_cache

# The commands a person types. `make demo` and `make test` install and start everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test unit lint stack-up stack-down bench compose-config

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

stack-up: $(STAMP)
	bash deploy/local-stack.sh up

stack-down:
	bash deploy/local-stack.sh down

## The main job: local Kafka + PostgreSQL, the three services, a simulated customer base; alerts print here.
demo: stack-up
	$(BIN)/churnwatch demo

## The whole test suite: lint, types, unit tests, integration tests on the real local stack.
test: stack-up lint
	$(BIN)/pytest -q tests

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	bash deploy/check-compose.sh

bench: stack-up
	$(BIN)/python -m bench

compose-config:
	bash deploy/check-compose.sh

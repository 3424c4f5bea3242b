# The commands a person types. `make demo` and `make test` install and start everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
UV_VERSION := 0.13.9

.PHONY: demo test unit lint stack-up stack-down bench backtest compose-config lock tools faults

# Installs exactly the versions (and file hashes) in requirements.lock, then the project itself without resolving.
$(STAMP): pyproject.toml $(LOCK)
	@echo "== $$(date +%T) venv from $(LOCK)"
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

stack-up: $(STAMP)
	@echo "== $$(date +%T) Kafka and PostgreSQL"
	bash deploy/local-stack.sh up

stack-down:
	bash deploy/local-stack.sh down

## The main job: local Kafka + PostgreSQL, the three services, a simulated customer base; alerts print here.
demo: stack-up
	$(BIN)/churnwatch demo

## Simulate 6 months of history for 1,000 accounts (a seed no rule was tuned on), backfill it into a fresh sandbox,
## score it with a real scorer, and print the backtest table (HTML and JSON reports land in backtests/).
backtest: stack-up
	$(BIN)/churnwatch demo --backtest $(BACKTEST_ARGS)

## What the tests need beside Kafka and PostgreSQL, from Debian's packages: Prometheus (promtool and the server) and
## Chromium (the console's browser tests). Installed when missing (as root, with apt), checked when present.
tools:
	@echo "== $$(date +%T) tools"
	bash deploy/prometheus.sh install
	bash deploy/chromium.sh >/dev/null

## The whole test suite: lint, types, unit tests, integration tests on the real local stack.
test: stack-up lint
	@echo "== $$(date +%T) pytest"
	$(BIN)/pytest -q --durations=25 tests

## The fault suite at its full size (3 broker kills, PostgreSQL down 60 s and 400 s, 10 scorer kills and a rebalance
## storm, Slack and SMTP down for minutes, poison and duplicates, a 10x burst): ~25 minutes, on a private broker
## and database it may kill. `make test` runs the same scenarios small.
faults: stack-up
	CHURNWATCH_FAULTS_SCALE=full $(BIN)/pytest -q -s tests/faults

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP) tools
	@echo "== $$(date +%T) ruff"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@echo "== $$(date +%T) mypy"
	$(BIN)/mypy .
	@echo "== $$(date +%T) compose, promtool, kubeconform"
	bash deploy/check-compose.sh
	bash deploy/prometheus.sh check
	bash deploy/check-k8s.sh

bench: stack-up
	$(BIN)/python -m bench

compose-config:
	bash deploy/check-compose.sh

## Re-resolve requirements.lock from pyproject.toml after changing a dependency there; the newest versions that fit
## the ranges are only taken with `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME).
lock: $(STAMP)
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o $(LOCK) $(LOCK_ARGS)

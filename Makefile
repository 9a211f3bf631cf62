# runbus — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml uv.lock
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(VENV)/bin/pip install -q "uv==$(UV_VERSION)"
	@UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --frozen --inexact -q
	@# Bytecode made once: where PYTHONDONTWRITEBYTECODE is set (CI sandboxes), every process
	@# the tests start would otherwise compile ~900 modules again (12 s each on a loaded machine).
	@$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked dependencies
	@echo "runbus installed in $(VENV) ($(VENV)/bin/runbus)"

run: $(STAMP) ## Run the whole system in the foreground (Ctrl-C drains and stops)
	@$(VENV)/bin/runbus run all --ensure-redis

run-cluster: $(STAMP) ## Start (or reuse) a local 6-node Redis Cluster (var/cluster, ports 7000-7005), then the whole system on it (12 partitions)
	@RUNBUS_REDIS_CLUSTER=true RUNBUS_PARTITIONS=$${RUNBUS_PARTITIONS:-12} RUNBUS_REDIS_URL=$${RUNBUS_CLUSTER_URL:-redis://127.0.0.1:7000/0} $(VENV)/bin/runbus run all --ensure-cluster

test: $(STAMP) ## Install, then run the unit and integration tests (short fault variants included)
	@bash scripts/ensure-services.sh
	@bash scripts/ensure-browser.sh
	@$(PY) -m compileall -q -j 0 runbus shared services bench tests > /dev/null
	@$(VENV)/bin/pytest -q -p no:cacheprovider -m "not slow"

test-faults: $(STAMP) ## Long fault-injection suite (20 SIGKILLs per service, 30 s PostgreSQL outage)
	@bash scripts/ensure-services.sh
	@RUNBUS_FAULTS_FULL=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/faults

test-fuzz: $(STAMP) ## Full bad-input fuzz (>= 100k generated entries)
	@bash scripts/ensure-services.sh
	@RUNBUS_FUZZ_FULL=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/integration/badinput tests/unit/badinput tests/unit/contract

test-api-fuzz: $(STAMP) ## Long schemathesis run (all checks, --max-examples 400: about 9,300 requests, 8 min) against a live API
	@bash scripts/ensure-services.sh
	@RUNBUS_API_FUZZ_FULL=1 $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/integration/api_fuzz

test-flood: $(STAMP) ## Issue #17's flood: 500k entries (90 % invalid) into a Redis with maxmemory 128mb; prints its figures (several minutes)
	@bash scripts/ensure-services.sh
	@RUNBUS_FLOOD_FULL=1 $(VENV)/bin/pytest -q -s -p no:cacheprovider tests/integration/overload/test_flood.py

test-unit: $(STAMP) ## Only the fast unit tests
	@$(VENV)/bin/pytest -q -m "not integration"

lint: $(STAMP) ## ruff and mypy --strict
	@$(VENV)/bin/ruff check runbus shared services tests bench docs_src hatch_build.py
	@$(VENV)/bin/ruff format --check runbus shared services tests bench docs_src hatch_build.py
	@$(VENV)/bin/mypy

fmt: $(STAMP) ## Format the code
	@$(VENV)/bin/ruff format runbus shared services tests bench docs_src hatch_build.py
	@$(VENV)/bin/ruff check --fix runbus shared services tests bench docs_src hatch_build.py

bench: $(STAMP) ## Full benchmark (about ten minutes), writes bench/results/latest.json
	@bash scripts/ensure-services.sh
	@$(PY) -m bench.run

bench-quick: $(STAMP) ## Quick benchmark (about two minutes, with the cluster part)
	@bash scripts/ensure-services.sh
	@$(PY) -m bench.run --quick

docs: $(STAMP) ## Build the documentation site into site/ (strict: no broken link or anchor)
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "documentation built in site/ (open site/index.html)"

docs-serve: $(STAMP) ## Serve the documentation on http://127.0.0.1:8001, rebuilt on every edit
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict --dev-addr 127.0.0.1:8001

docs-settings: $(STAMP) ## Regenerate the settings table of docs/reference/settings.md from the model
	@$(PY) -m tests.docs.settings_table --write

up: ## docker compose up (needs a Docker engine)
	docker compose up -d --build

up-cluster: ## docker compose, profile cluster: six Redis nodes, the cluster job, every service on it
	docker compose --profile cluster up -d --build cluster-validator cluster-persister cluster-coach cluster-api

down: ## docker compose down
	docker compose down

compose-check: $(STAMP) ## Validate compose.yaml against the Compose spec (offline)
	@$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

clean: ## Remove the environment and local state
	rm -rf $(VENV) var/*.db var/*.db-* var/redis

.PHONY: help install run run-cluster up-cluster test test-faults test-fuzz test-api-fuzz test-flood test-unit lint fmt bench bench-quick docs docs-serve docs-settings up down compose-check clean

# kyodo: `make demo` then `make test` on a fresh machine (Python 3.11, pip, gcc).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
# configs/platform.yaml's `tasks` (the one list; read when a recipe needs it, after setup)
TASKS = $(shell $(BIN)/python -c 'from models.configs import task_names; print(*task_names())')

export KYODO_ROOT := $(CURDIR)
export BENTOML_HOME := $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK := True
# Idle OpenMP threads sleep instead of spinning: LightGBM trains ~10x faster on 2 busy cores.
export OMP_WAIT_POLICY := PASSIVE
export PATH := $(CURDIR)/$(BIN):$(PATH)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install kyodo with all extras
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[serve,train,dev]'
	@touch $(STAMP)

dvc-init: setup
	@[ -d .dvc ] || $(BIN)/dvc init -q
	@$(BIN)/dvc config core.analytics false

data: dvc-init ## Generate the deterministic demo data and track it with DVC (data.dvc)
	$(BIN)/kyodo data generate
	$(BIN)/kyodo data validate
	$(BIN)/dvc add -q data

train: data ## Train and export every task through DVC (dvc repro), then promote champions
	$(BIN)/dvc repro
	@for t in $(TASKS); do $(BIN)/kyodo promote $$t || true; done

demo: train ## Install, build data, train, register, promote, print keys, serve on :$(PORT)
	@$(BIN)/kyodo models
	@echo; echo "Demo API keys (Authorization: Bearer <key>):"; $(BIN)/kyodo tenants keys
	@echo; echo "API docs:      http://localhost:$(PORT)/v1/docs"
	@echo "Index page:    http://localhost:$(PORT)/                   (every task page; a key marks its own)"
	@echo "Task pages (configs/platform.yaml tasks):"; $(BIN)/kyodo tenants pages --port $(PORT)
	@echo "Costs page:    http://localhost:$(PORT)/ui/costs            (any key; kyodo-demo-admin: all)"
	@echo "Operations:    http://localhost:$(PORT)/ui/operations       (any key; kyodo-demo-admin: all)"
	@echo "Metrics:       http://localhost:$(PORT)/metrics     (key kyodo-demo-admin)"
	@echo "Models:        http://localhost:$(PORT)/v1/models"; echo
	$(BIN)/kyodo serve --port $(PORT)

report: setup ## Pooling-gain report for every trained task (reports/pooling.json, ~minutes)
	$(BIN)/kyodo report pooling

serve: setup ## Serve the promoted champions, API and pages on :$(PORT)
	$(BIN)/kyodo serve --port $(PORT)

test: setup ## ruff, mypy (models/, training/, serving/store/), then the fast tests (incl. one real bentoml serve)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

test-slow: setup ## Slow suites: Chromium page tests, Dask cluster, PostgreSQL + S3 MLflow
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install -q playwright
	$(BIN)/pytest -q -m slow

bench: train ## Benchmarks; results in reports/bench/*.json (costs: the demo month on the trained demo)
	$(BIN)/python -m bench.claim_screening
	$(BIN)/python -m bench.claims_unseen
	$(BIN)/python -m bench.uke_import
	$(BIN)/python -m bench.claims_csv
	$(BIN)/python -m bench.checkup_nudge
	$(BIN)/python -m bench.uplift_real
	$(BIN)/python -m bench.care_plan
	$(BIN)/python -m bench.road_damage
	$(BIN)/python -m bench.road_onboarding
	$(BIN)/python -m bench.road_street
	$(BIN)/python -m bench.road_masks
	$(BIN)/python -m bench.road_masks --onboard
	$(BIN)/python -m bench.road_frames
	$(BIN)/python -m bench.lifecycle
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.costs

lint: setup ## ruff
	$(BIN)/ruff check .

clean: ## Remove generated state (keeps .venv)
	rm -rf build reports state mlflow/mlflow.db mlflow/artifacts .bentoml

.PHONY: help setup dvc-init data train demo report serve test test-slow bench lint clean

# Everyday jobs. Each target installs what it needs into .venv from the committed lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test unit lint setup lock clean readme definition bench demo orchestrate

## setup: create .venv with the locked versions and the tap in editable mode (--no-deps: the lock
## is complete, and leaves out gql's `backoff`, which would overwrite singer-sdk's:
## requirements-overrides.txt)
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## lint: ruff (format and rules) and mypy (the package, its tests and tools)
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy tap_kore_billing tests benchmarks scripts

## test: set up, lint, and run the whole test suite (about 19 minutes on 2 cores, one process;
## PYTEST_WORKERS=4 spreads its files over 4 pytest-xdist workers: about 11 minutes)
PYTEST_WORKERS ?= 0
test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

## unit: the pure modules' tests only, no server (a few seconds)
unit: setup
	$(BIN)/python -m pytest tests/unit -q

## demo: the whole pipeline on the local emulator into DuckDB, then a reconciliation summary
demo: setup
	$(BIN)/python scripts/demo.py

## orchestrate: the Dagster UI (http://127.0.0.1:3000, ORCHESTRATE_PORT picks another) with the
## code location: its shards, dbt models, checks and schedule; locally the demo account into DuckDB
orchestrate: setup
	$(BIN)/python scripts/orchestrate.py

## bench: the performance benchmark (CPU ceiling, quota-bound wall time, memory)
bench: setup
	$(BIN)/python benchmarks/run.py

## lock: re-pin every dependency (needs uv: pip install uv)
lock:
	uv pip compile pyproject.toml --group dev --universal --python-version 3.10 \
		--override requirements-overrides.txt \
		--no-header --custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## readme: refresh docs/settings.md's settings table (with each Meltano kind) from
## `tap-kore-billing --about`
readme: setup
	$(BIN)/python scripts/readme_settings.py

## definition: refresh the settings, kinds and defaults of meltano/tap-kore-billing.yml (the plugin
## definition) and of meltano.yml's tap-kore-billing from `--about`
definition: setup
	$(BIN)/python scripts/plugin_definition.py

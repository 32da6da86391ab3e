# Everyday jobs. Each target installs what it needs into .venv from the committed lock file.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Meltano installs plugins with uv, which writes no bytecode (pip does): without it, and with
# PYTHONDONTWRITEBYTECODE set, every start of a plugin compiles its imports again (dbt: 2 s of
# CPU a start, the tap under Meltano 0.7 s).
export UV_COMPILE_BYTECODE := 1
# The same for our own code, installed in editable mode (in .venv and in Meltano's tap): with
# PYTHONDONTWRITEBYTECODE, every start of the tap or the emulator compiled it again (about 50 ms
# of CPU). Python still reads a changed file's source, so an edit is never hidden by this.
COMPILE = $(BIN)/python -m compileall -q tap_kore_billing snowflake_local benchmarks scripts

.PHONY: test unit lint setup plugins lock clean readme definition bench demo orchestrate \
	focus-validator focus-export focus-validate browser report

## setup: create .venv with the locked versions and the tap in editable mode (--no-deps: the lock
## is complete, and leaves out gql's `backoff`, which would overwrite singer-sdk's:
## requirements-overrides.txt). pip installs the lock's uv, which installs the rest: 14 s where
## pip took 45 s.
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps \
		"$$(grep -m1 '^uv==' requirements.lock)"
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)
	$(COMPILE)

## lint: ruff (format and rules) and mypy (the package, its tests and tools)
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy tap_kore_billing tests benchmarks scripts

## test: set up, lint, and run the whole test suite in 4 pytest-xdist workers, a file per worker
## at a time (docs/development.md gives its time; PYTEST_WORKERS=0 runs it in one process)
PYTEST_WORKERS ?= 4
test:
	@# The validator's virtualenv is built while .venv is set up and linted and Meltano installs
	@# its plugins: about a minute less on a fresh clone.
	@$(MAKE) --no-print-directory -j3 lint plugins focus-validator browser
	@$(COMPILE)
	@# Bytecode written during the run (tests/ and pytest's rewritten asserts among it): each
	@# worker collects every test file, about 2 s less of CPU each.
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

## plugins: every plugin of meltano.yml installed by Meltano, with its bytecode (one that is
## current is skipped); the tests' Meltano runs use them
plugins: setup
	$(BIN)/meltano --log-level=warning install

## focus-validator: the FinOps Foundation's FOCUS validator in a virtualenv of its own,
## .venv-focus (it declares Python >= 3.12 and numpy < 2: installed from the pinned file with
## --ignore-requires-python, numpy 2 as a wheel, and its one line of 3.12 syntax patched)
FOCUS_VENV := .venv-focus
FOCUS_STAMP := $(FOCUS_VENV)/.installed
FOCUS_PINS := scripts/focus-validator-requirements.txt
# Its pinned numpy, pyarrow and SQLAlchemy need Python >= 3.11: on 3.10, FOCUS_PYTHON=python3.12.
FOCUS_PYTHON ?= $(PYTHON)
focus-validator: $(FOCUS_STAMP)

$(FOCUS_STAMP): $(FOCUS_PINS) scripts/focus_validate.py
	@$(FOCUS_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo \
		"focus-validator needs Python >= 3.11 for .venv-focus: set FOCUS_PYTHON=python3.12"; \
		exit 1; }
	test -x $(FOCUS_VENV)/bin/python || $(FOCUS_PYTHON) -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps \
		--ignore-requires-python --only-binary numpy -r $(FOCUS_PINS)
	$(PYTHON) scripts/focus_validate.py --patch
	touch $(FOCUS_STAMP)

## focus-export: kore_billing__focus of output/kore_billing.duckdb (the demo's) as
## output/focus/kore_billing__focus.csv and .parquet (scripts/focus_export.py --help: others)
focus-export: setup
	$(BIN)/python scripts/focus_export.py

## focus-validate: those two files checked by the validator (no failing rule: exit 0)
focus-validate: focus-validator
	$(PYTHON) scripts/focus_validate.py output/focus/kore_billing__focus.csv \
		output/focus/kore_billing__focus.parquet

## unit: the pure modules' tests only, no server (a few seconds)
unit: setup
	$(BIN)/python -m pytest tests/unit -q

## demo: the whole pipeline on the local emulator into DuckDB, then a reconciliation summary and
## output/report.html; WAREHOUSE=postgres (127.0.0.1:5432) or WAREHOUSE=snowflake (the local
## Snowflake, started and stopped here) runs it there
WAREHOUSE ?= duckdb
demo: setup
	$(BIN)/python scripts/demo.py "$(WAREHOUSE)"

## report: output/report.html again from the demo's DuckDB file (kore-billing-report --help: others)
report: setup
	$(BIN)/kore-billing-report --url duckdb:///output/kore_billing.duckdb --out output/report.html

## browser: Debian's Chromium and chromedriver, for the report's browser test (apt-get, as root)
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

## orchestrate: the Dagster UI (http://127.0.0.1:3000, ORCHESTRATE_PORT picks another) with the
## code location: its shards, dbt models, checks and schedule; locally the demo account into DuckDB
orchestrate: setup
	$(BIN)/python scripts/orchestrate.py

## bench: the performance benchmark (CPU ceiling, quota-bound wall time, memory)
bench: setup
	@$(COMPILE)
	$(BIN)/python benchmarks/run.py

## lock: re-pin every dependency (needs uv: pip install uv)
lock:
	uv pip compile pyproject.toml --group dev --universal --python-version 3.10 \
		--override requirements-overrides.txt \
		--no-header --custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) $(FOCUS_VENV) .pytest_cache .mypy_cache .ruff_cache

## readme: refresh docs/settings.md's settings table (with each Meltano kind) from
## `tap-kore-billing --about`
readme: setup
	$(BIN)/python scripts/readme_settings.py

## definition: refresh the settings, kinds and defaults of meltano/tap-kore-billing.yml (the plugin
## definition) and of meltano.yml's tap-kore-billing from `--about`
definition: setup
	$(BIN)/python scripts/plugin_definition.py

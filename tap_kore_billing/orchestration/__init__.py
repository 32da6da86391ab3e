"""The Dagster code location (the `orchestrate` extra): one extract-load asset per shard of
apps, each a `meltano run`; the dbt package's models as assets; the reconciliation and the
audit as asset checks; an hourly schedule. Dagster finds it through `[tool.dagster]` in
pyproject.toml (`definitions.py`). It imports the tap's modules only for the demo account
of its local default; nothing in the tap imports it."""

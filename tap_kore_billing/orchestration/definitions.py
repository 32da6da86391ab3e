"""The code location Dagster loads (`[tool.dagster]` in pyproject.toml): `defs`, built from the
environment (settings.py). A definitions module of your own may call `build_definitions` with
another executor (Docker, Kubernetes: docs/orchestration.md)."""

from __future__ import annotations

import dagster as dg

from tap_kore_billing.orchestration.checks import findings_asset
from tap_kore_billing.orchestration.dbt_assets import dbt_definitions
from tap_kore_billing.orchestration.extract_load import shard_assets, shard_key
from tap_kore_billing.orchestration.report_asset import report_asset
from tap_kore_billing.orchestration.schedule import (
    executor_for,
    kore_billing_job,
    kore_billing_schedule,
)
from tap_kore_billing.orchestration.settings import CodeLocationSettings


def build_definitions(
    settings: CodeLocationSettings, executor: dg.ExecutorDefinition | None = None
) -> dg.Definitions:
    """Every asset, check, job and schedule for `settings`. `executor` replaces the default:
    the multi-process executor, one step at a time into DuckDB."""
    chosen = executor or executor_for(settings)
    shard_keys = [shard_key(name) for name in settings.shards.names]
    job = kore_billing_job(settings, chosen)
    schedule = kore_billing_schedule(settings, job, shard_keys)  # a bad cron fails first
    dbt_build, dbt_resource = dbt_definitions(settings, shard_keys)
    return dg.Definitions(
        assets=[
            *shard_assets(settings),
            dbt_build,
            findings_asset(settings),
            report_asset(settings),
        ],
        jobs=[job],
        schedules=[schedule],
        resources={"dbt": dbt_resource},
        executor=chosen,  # also for `dagster asset materialize` (the implicit job)
    )


defs = build_definitions(CodeLocationSettings.from_environment())

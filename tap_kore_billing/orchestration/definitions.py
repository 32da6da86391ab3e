"""The code location Dagster loads (`[tool.dagster]` in pyproject.toml): `defs`, built from the
environment (settings.py). `build_definitions` builds it for other settings (the tests)."""

from __future__ import annotations

import dagster as dg

from tap_kore_billing.orchestration.checks import findings_asset
from tap_kore_billing.orchestration.dbt_assets import dbt_definitions
from tap_kore_billing.orchestration.extract_load import shard_assets, shard_key
from tap_kore_billing.orchestration.schedule import (
    executor,
    kore_billing_job,
    kore_billing_schedule,
)
from tap_kore_billing.orchestration.settings import CodeLocationSettings


def build_definitions(settings: CodeLocationSettings) -> dg.Definitions:
    shards = shard_assets(settings)
    dbt_build, dbt_resource = dbt_definitions(
        settings, [shard_key(name) for name in settings.shards.names]
    )
    job = kore_billing_job(settings)
    return dg.Definitions(
        assets=[*shards, dbt_build, findings_asset(settings)],
        jobs=[job],
        schedules=[kore_billing_schedule(settings, job)],
        resources={"dbt": dbt_resource},
        executor=executor(settings),  # also for `dagster asset materialize` (the implicit job)
    )


defs = build_definitions(CodeLocationSettings.from_environment())

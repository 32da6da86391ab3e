"""The job that runs everything (every shard, then dbt, then the checks) and its schedule:
from __future__ import annotations
hourly unless KORE_BILLING_SCHEDULE says otherwise, skipped while the last run still goes."""

import typing as t

import dagster as dg

from tap_kore_billing.orchestration.settings import CodeLocationSettings

JOB = "kore_billing"
# What define_asset_job returns (dagster does not export the class's name at its top level).
AssetJob: t.TypeAlias = "t.Any"
STILL_GOING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def executor(settings: CodeLocationSettings) -> dg.ExecutorDefinition:
    """DuckDB allows one writer: its steps run one after another. Elsewhere the shards run in
    parallel (each shard's pool keeps a shard to one run at a time)."""
    if settings.one_writer:
        return dg.multiprocess_executor.configured({"max_concurrent": 1})
    return dg.multiprocess_executor


def kore_billing_job(settings: CodeLocationSettings) -> AssetJob:
    return dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.all(),
        executor_def=executor(settings),
        description="Every shard's `meltano run`, then dbt build, then the findings' checks.",
    )


def kore_billing_schedule(settings: CodeLocationSettings, job: AssetJob) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule=settings.schedule,
        execution_timezone="UTC",
        # Locally it waits to be turned on; deployed, it runs as soon as it is loaded.
        default_status=(
            dg.DefaultScheduleStatus.STOPPED if settings.local else dg.DefaultScheduleStatus.RUNNING
        ),
        name=f"{JOB}_schedule",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        going = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=JOB, statuses=STILL_GOING), limit=1
        )
        if going:
            return dg.SkipReason(
                f"run {going[0].dagster_run.run_id} of {JOB} is still going: one at a time"
            )
        return dg.RunRequest()

    return _schedule

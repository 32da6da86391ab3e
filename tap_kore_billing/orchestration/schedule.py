"""The job that runs everything (every shard, then dbt, then the checks) and its schedule:
hourly unless KORE_BILLING_SCHEDULE says otherwise, skipped while a run of these assets still
goes (the scheduled job's, or the UI's "Materialize all")."""

from __future__ import annotations

import typing as t

import dagster as dg

from tap_kore_billing.orchestration.settings import (
    SCHEDULE_VARIABLE,
    CodeLocationSettingError,
    CodeLocationSettings,
)

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


def executor_for(settings: CodeLocationSettings) -> dg.ExecutorDefinition:
    """DuckDB allows one writer: its steps run one after another. Elsewhere the shards run in
    parallel (each shard's pool keeps a shard to one run at a time)."""
    if settings.one_writer:
        return dg.multiprocess_executor.configured({"max_concurrent": 1})
    return dg.multiprocess_executor


def kore_billing_job(settings: CodeLocationSettings, executor: dg.ExecutorDefinition) -> AssetJob:
    return dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.all(),
        executor_def=executor,
        description="Every shard's `meltano run`, then dbt build, then the findings' checks.",
    )


def kore_billing_schedule(
    settings: CodeLocationSettings, job: AssetJob, shard_keys: t.Sequence[dg.AssetKey]
) -> dg.ScheduleDefinition:
    """The schedule; a run that includes a shard (the job's, or the UI's "Materialize all")
    and is still going makes it skip. A cron Dagster refuses is named in one line."""
    try:
        return _schedule(settings, job, shard_keys)
    except dg.DagsterInvalidDefinitionError:
        raise CodeLocationSettingError(
            f"{SCHEDULE_VARIABLE}={settings.schedule!r} is not a cron expression Dagster takes, "
            "e.g. '0 * * * *' (hourly)"
        ) from None


def _schedule(
    settings: CodeLocationSettings, job: AssetJob, shard_keys: t.Sequence[dg.AssetKey]
) -> dg.ScheduleDefinition:
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
    def _evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        going = context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=STILL_GOING), limit=200
        )
        for record in going:
            run = record.dagster_run
            if run.job_name == JOB or set(run.asset_selection or ()) & set(shard_keys):
                return dg.SkipReason(
                    f"run {run.run_id} ({run.job_name}) still extracts: one run at a time"
                )
        return dg.RunRequest()

    return _evaluate

"""The schedule as Dagster evaluates it: a run that still extracts (the scheduled job's, or the
UI's "Materialize all") makes it skip, anything else lets it start a run; a cron Dagster refuses
is named in one line."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from helpers import ROOT

from tap_kore_billing.orchestration.definitions import build_definitions
from tap_kore_billing.orchestration.extract_load import shard_key
from tap_kore_billing.orchestration.schedule import (
    JOB,
    executor_for,
    kore_billing_job,
    kore_billing_schedule,
)
from tap_kore_billing.orchestration.settings import (
    CodeLocationSettingError,
    CodeLocationSettings,
)

SETTINGS = CodeLocationSettings.from_environment({"MELTANO_PROJECT_ROOT": str(ROOT)})
SHARDS = [shard_key(name) for name in SETTINGS.shards.names]


def evaluate(instance: dg.DagsterInstance) -> object:
    job = kore_billing_job(SETTINGS, executor_for(SETTINGS))
    schedule = kore_billing_schedule(SETTINGS, job, SHARDS)
    return schedule(dg.build_schedule_context(instance=instance))


def add_run(instance, job_name, status, assets=None):
    instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            run_id=str(uuid.uuid4()),
            status=status,
            asset_selection=frozenset(assets) if assets else None,
        )
    )


def test_no_run_going_starts_one():
    with dg.instance_for_test() as instance:
        add_run(instance, JOB, dg.DagsterRunStatus.SUCCESS)
        add_run(instance, "__ASSET_JOB", dg.DagsterRunStatus.FAILURE, SHARDS)
        assert isinstance(evaluate(instance), dg.RunRequest)


@pytest.mark.parametrize(
    ("job_name", "assets"),
    [(JOB, None), ("__ASSET_JOB", SHARDS), ("__ASSET_JOB", SHARDS[1:])],
)
def test_a_run_that_still_extracts_makes_it_skip(job_name, assets):
    with dg.instance_for_test() as instance:
        add_run(instance, job_name, dg.DagsterRunStatus.STARTED, assets)
        said = evaluate(instance)
        assert isinstance(said, dg.SkipReason)
        assert "one run at a time" in str(said.skip_message)


def test_a_run_of_other_assets_does_not():
    with dg.instance_for_test() as instance:
        add_run(instance, "__ASSET_JOB", dg.DagsterRunStatus.STARTED, [dg.AssetKey("other")])
        assert isinstance(evaluate(instance), dg.RunRequest)


def test_a_cron_dagster_refuses_is_named(tmp_path):
    settings = CodeLocationSettings.from_environment(
        {
            "MELTANO_PROJECT_ROOT": str(ROOT),
            "KORE_BILLING_SCHEDULE": "61 * * * *",
            "KORE_BILLING_WORK_DIR": str(tmp_path),
        }
    )
    with pytest.raises(CodeLocationSettingError, match=r"^KORE_BILLING_SCHEDULE='61 \* \* \* \*'"):
        build_definitions(settings)

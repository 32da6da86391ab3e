"""Shards in parallel, as a deployment runs them: `dagster asset materialize` (the multi-process
executor) into PostgreSQL, the demo account in 2 shards. Both taps run at once in one Meltano
project, each with a `.meltano` of its own (Meltano 4.4 shares a tap's catalog file between
concurrent runs), and the checks read the models back from PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster_events import events_of
from helpers import CAPTURED_OUTPUT, PG, ROOT, postgres_pipeline_env, postgres_schemas, run_meltano

from tap_kore_billing.sandbox.demo_account import demo_sandbox

ID = '"billingSessionId"'
SHARD_STEPS = ("kore_billing__shard_1", "kore_billing__shard_2")


@pytest.fixture
def schemas():
    """The loader's and dbt's schemas, and one for Meltano's state: shards that run at once
    keep it in a server database, as docs/orchestration.md advises (SQLite has one writer)."""
    with postgres_schemas("kore_dagster") as (load, models):
        state = f"{load}_meltano"
        with psycopg.connect(**PG, autocommit=True) as conn:
            conn.execute(f"create schema {state}")
        try:
            yield load, models, state
        finally:
            with psycopg.connect(**PG, autocommit=True) as conn:
                conn.execute(f"drop schema if exists {state} cascade")


def test_shards_run_at_once_into_postgres(schemas, tmp_path):
    load, models, state = schemas
    run_meltano(["install", "tap-kore-billing", "target-postgres", "dbt-postgres"], tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        **postgres_pipeline_env(load, models),
        "KORE_BILLING_LOADER": "target-postgres",
        "KORE_BILLING_WORK_DIR": str(tmp_path / "work"),
        "MELTANO_DATABASE_URI": (
            f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"
            f"?options=-csearch_path%3D{state}"
        ),
        "DAGSTER_HOME": str(home),
    }
    for name in ("MELTANO_ENVIRONMENT", "KORE_BILLING_SHARDS"):
        env.pop(name, None)
    with demo_sandbox() as sb:
        before = sb.info()["visible_sessions"]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "tap_kore_billing.orchestration.definitions",
            "--select",
            "*",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    steps = [
        line for line in (done.stdout + done.stderr).splitlines() if "kore_billing__shard" in line
    ]
    assert done.returncode == 0, "\n".join(line for line in steps if " - DEBUG - " not in line)

    with demo_sandbox() as sb:  # the account shows more sessions as the clock runs
        after = sb.info()["visible_sessions"]
    with psycopg.connect(**PG) as conn:
        query = f"select count(*), count(distinct {ID}) from {load}.billing_sessions"  # noqa: S608
        rows, distinct = conn.execute(query).fetchone() or (0, 0)
    assert rows == distinct, "no session loaded twice"
    assert before <= rows <= after, "every session the account showed"

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            [run] = instance.get_run_records()
            run_id = run.dagster_run.run_id
            starts = {e.step_key: e.timestamp for e in events_of(instance, run_id, "STEP_START")}
            ends = {e.step_key: e.timestamp for e in events_of(instance, run_id, "STEP_SUCCESS")}
            checks = {
                e.data.check_name: e.data
                for e in events_of(instance, run_id, "ASSET_CHECK_EVALUATION")
                if e.data.asset_key.to_user_string() == "kore_billing/findings"
            }
    first, second = sorted(SHARD_STEPS, key=lambda step: starts[step])
    assert starts[second] < ends[first], "the two shards ran at the same time"
    assert checks["reconciliation"].metadata["mismatches"].value == 1
    assert checks["audit"].metadata["findings"].value == len(sb.planted_audit_cases())

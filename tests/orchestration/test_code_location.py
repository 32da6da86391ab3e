"""The Dagster code location, run as a user runs it: every asset materialized in-process against
the demo account's emulator (3 apps in 2 shards, its injected mismatch and planted audit cases)
into DuckDB; the checks report exactly those; a second run is incremental; a shard whose tap
fails fails its step in the tap's words and leaves the other's state alone; and `dagster
definitions validate` finds the code location from the project's folder with no flag."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import dagster_dbt.core.resource
import duckdb
import pytest
from dagster_events import (
    STATE_ID,
    check_results,
    materialized,
    saved_state,
    step_failures,
    warnings_logged,
)
from helpers import CAPTURED_OUTPUT, ROOT, run_meltano

from tap_kore_billing.orchestration.dbt_assets import ADAPTER_WARNING
from tap_kore_billing.orchestration.definitions import build_definitions
from tap_kore_billing.orchestration.settings import CodeLocationSettings
from tap_kore_billing.sandbox.demo_account import INJECTED_DAY, demo_sandbox

SHARDS = ("kore_billing/shard_1", "kore_billing/shard_2")
FINDINGS = "kore_billing/findings"
REPORT = "kore_billing/report"


@pytest.fixture(scope="module")
def code_location(tmp_path_factory):
    """The local default's environment, with the code location's files and Meltano's state in a
    folder of this module's own."""
    work = tmp_path_factory.mktemp("orchestrate")
    run_meltano(["install", "tap-kore-billing", "target-duckdb", "dbt-duckdb"], work)
    env = {
        "MELTANO_PROJECT_ROOT": str(ROOT),
        "KORE_BILLING_WORK_DIR": str(work),
        "MELTANO_DATABASE_URI": f"sqlite:///{work / 'meltano.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MELTANO_ENVIRONMENT", "KORE_BILLING_LOADER", "KORE_BILLING_SHARDS"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.instance_for_test() as instance:
            yield CodeLocationSettings.from_environment(), instance, env


@pytest.fixture(scope="module")
def demo():
    """What the demo account holds (its emulator is started by each shard's step, and shows
    the sessions that have ended by then: more as the clock runs)."""
    with demo_sandbox() as sb:
        return {"apps": sb.apps(), "sessions": sb.info()["visible_sessions"], "sb": sb}


def sessions_now() -> int:
    with demo_sandbox() as sb:
        return int(sb.info()["visible_sessions"])


@pytest.fixture(scope="module")
def two_runs(code_location, demo):
    """Two runs of every asset; `demo` is counted first, so that it counts no more sessions
    than the runs could see."""
    settings, instance, _env = code_location
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    before = dict(os.environ)
    first = job.execute_in_process(instance=instance, raise_on_error=False)
    loaded = sessions_in(settings.work_dir / "kore_billing.duckdb")
    second = job.execute_in_process(instance=instance, raise_on_error=False)
    assert dict(os.environ) == before, "a run in-process leaves its caller's environment alone"
    return first, second, loaded


def sessions_in(database: Path) -> int:
    with duckdb.connect(str(database), read_only=True) as db:
        table = "kore_billing.kore_billing.billing_sessions"
        query = f"select count(distinct billingsessionid) from {table}"  # noqa: S608
        return int((db.sql(query).fetchone() or (0,))[0])


def test_every_shard_loads_its_own_apps_under_its_own_state(two_runs, code_location, demo):
    first, _, loaded = two_runs
    assert first.success, step_failures(first)
    shards = {key: meta for key, meta in materialized(first).items() if key in SHARDS}
    assert set(shards) == set(SHARDS)
    # The demo's 3 apps split 1 and 2 by hash; together they hold every session the account has.
    assert sorted(meta["apps"] for meta in shards.values()) == [1, 2]
    total = sum(meta["sessions_loaded"] for meta in shards.values())
    assert total == loaded, "every session the shards sent is in the warehouse, once"
    assert demo["sessions"] <= total <= sessions_now(), "every session the account has shown"
    assert all(meta["requests_made"] > 0 for meta in shards.values())
    _, _, env = code_location
    states = [saved_state(env, STATE_ID.format(loader="target-duckdb", n=n)) for n in (1, 2)]
    holders = [
        {app["botId"] for app in demo["apps"] if app["botId"] in json.dumps(state)}
        for state in states
    ]
    assert all(holders), "each shard keeps a state of its own"
    assert not holders[0] & holders[1], "no app's bookmarks are in both shards' states"
    assert holders[0] | holders[1] == {app["botId"] for app in demo["apps"]}


def test_the_checks_report_the_injected_mismatch_and_the_planted_cases(two_runs, demo):
    first, _, _ = two_runs
    checks = check_results(first)
    reconciliation = checks[f"{FINDINGS}:reconciliation"]
    assert not reconciliation.passed
    assert reconciliation.severity == dg.AssetCheckSeverity.ERROR
    assert reconciliation.metadata["mismatches"].value == 1
    [difference] = reconciliation.metadata["differences"].value.splitlines()
    assert "Claims Bot" in difference
    assert INJECTED_DAY in difference
    assert "3 more billed than found" in difference
    audit = checks[f"{FINDINGS}:audit"]
    assert not audit.passed
    assert audit.severity == dg.AssetCheckSeverity.WARN
    planted = demo["sb"].planted_audit_cases()
    assert audit.metadata["findings"].value == len(planted)
    assert audit.metadata["excess_sessions"].value == sum(c["excessSessions"] for c in planted)
    quoted = {i for c in planted for i in c["billingSessionIds"]}
    assert set(audit.metadata["top_ids"].value) == quoted
    # Not blocking: the run went on, and the numbers are the asset's too, to plot over time.
    numbers = materialized(first)[FINDINGS]
    assert numbers["mismatches"] == 1
    assert numbers["findings"] == len(planted)
    # dagster-dbt's checks (one per dbt test) are kept beside ours, and they pass.
    dbt_checks = {key: c for key, c in checks.items() if not key.startswith(FINDINGS)}
    assert len(dbt_checks) > 50
    assert all(c.passed for c in dbt_checks.values()), [k for k, c in dbt_checks.items()]


def test_the_report_is_an_asset_after_the_models_with_its_path(two_runs, code_location):
    """The report asset (downstream of the dbt models and the findings) writes its page into the
    code location's folder, the path in its metadata."""
    settings, _, _ = code_location
    first, second, _ = two_runs
    for result in (first, second):
        report = materialized(result)[REPORT]
        page = Path(report["path"])
        assert page == settings.work_dir / "report.html"
        assert Path(report["rows"]) == page.with_suffix(".csv")
        assert report["bytes"] == page.stat().st_size
        assert "Claims Bot, 21 Nov, conversations, 3 more billed than found" in report["verdict"]
        assert "<script" not in page.read_text()
    upstream = (
        build_definitions(settings)
        .resolve_asset_graph()
        .get(dg.AssetKey.from_user_string(REPORT))
        .parent_keys
    )
    assert dg.AssetKey(["kore_billing__reconciliation"]) in upstream
    assert dg.AssetKey.from_user_string(FINDINGS) in upstream


def test_a_second_run_is_incremental(two_runs):
    first, second, _ = two_runs
    assert second.success, step_failures(second)
    before, after = materialized(first), materialized(second)
    for shard in SHARDS:
        assert after[shard]["requests_made"] < before[shard]["requests_made"]
    assert after[FINDINGS]["mismatches"] == before[FINDINGS]["mismatches"]


def test_dbt_runs_through_meltano_without_an_adapter_warning(two_runs, code_location):
    """A seam of dagster-dbt (dbt_assets.ADAPTER_WARNING): the warning it logs when dbt-core is
    not importable is dropped; if an upgrade rewords it, the first assertion says so."""
    assert ADAPTER_WARNING in inspect.getsource(dagster_dbt.core.resource)
    _, instance, _ = code_location
    for result in two_runs[:2]:
        logged = warnings_logged(instance, result.run_id)
        assert not [line for line in logged if "dbt adapter" in line]


def test_a_failing_shard_fails_in_the_taps_words_and_spares_the_other(
    two_runs, code_location, demo
):
    """Shard 2 names an app the account does not have: its tap stops with an HTTP 403."""
    _, instance, env = code_location
    front_desk = demo["apps"][0]["botId"]
    stranger = "st-00000000-0000-4000-8000-000000000000"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KORE_BILLING_SHARDS", json.dumps([[front_desk], [stranger]]))
        explicit = CodeLocationSettings.from_environment()
    state_2 = STATE_ID.format(loader="target-duckdb", n=2)
    before = saved_state(env, state_2)
    job = build_definitions(explicit).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey.from_user_string(s) for s in SHARDS],
    )
    assert not result.success
    failures = step_failures(result)
    [failed] = failures
    assert "shard_2" in failed
    message = failures[failed]
    # The tap's own last line, as the tap wrote it.
    assert message.startswith("tap-kore-billing failed: request failed:")
    assert "HTTP 403" in message
    assert stranger in message
    assert "Traceback" not in message
    assert "kore_billing/shard_1" in materialized(result)
    assert front_desk in json.dumps(saved_state(env, STATE_ID.format(loader="target-duckdb", n=1)))
    # The failed shard keeps every bookmark it had (Meltano saves what a failed run finished).
    kept = bookmarks(saved_state(env, state_2))
    assert len(bookmarks(before)) == 2, before
    assert all(kept.get(app, "") >= value for app, value in bookmarks(before).items()), kept


def bookmarks(state: dict) -> dict[str, str]:
    """billing_sessions' bookmark per app in a Meltano state."""
    stream = state.get("singer_state", {}).get("bookmarks", {}).get("billing_sessions", {})
    return {
        part["context"]["botId"]: str(part.get("replication_key_value"))
        for part in stream.get("partitions", [])
    }


def test_dagster_finds_the_code_location_with_no_flag(code_location, tmp_path):
    _, _, env = code_location
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
        cwd=ROOT,
        env={**os.environ, **env, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Validation successful for code location kore_billing" in done.stdout + done.stderr

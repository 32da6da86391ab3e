"""Snowflake, run here: the `snowflake-local` environment against fakesnow, as
docs/snowflake-local.md says.

`meltano --environment=snowflake-local invoke fakesnow:serve` is the local Snowflake (data in a
folder of DuckDB files), then `meltano --environment=snowflake-local run tap-kore-billing
target-snowflake dbt-snowflake:build` runs twice against the emulator with injected
discrepancies. target-snowflake there is the installed one except its bulk load (plain INSERTs,
which append: snowflake_local/kore_target_snowflake.py), so the second run's re-read lookback
lands as extra copies that the staging models must collapse. Then the FOCUS model is built with
prices (`meltano invoke dbt-snowflake build --vars ...`): its names as FOCUS spells them, its
costs as sessions x price. Needs no PostgreSQL: nothing here skips.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import MELTANO, ROOT, SECRETS_SEEN, catalog_selecting, run_meltano, tap_env
from snowflake_helpers import LOCAL, local_snowflake, query

from tap_kore_billing.orchestration.local_snowflake import free_port
from tap_kore_billing.report.model import build
from tap_kore_billing.report.warehouse import fetch_dbt
from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
STREAMS = ("billing_sessions", "billing_usage_summary")
# What target-snowflake adds to every table (add_record_metadata, on by default).
METADATA_COLUMNS = {
    "_SDC_EXTRACTED_AT": "TIMESTAMP_NTZ",
    "_SDC_RECEIVED_AT": "TIMESTAMP_NTZ",
    "_SDC_BATCHED_AT": "TIMESTAMP_NTZ",
    "_SDC_DELETED_AT": "TIMESTAMP_NTZ",
    "_SDC_SEQUENCE": "NUMBER",
    "_SDC_TABLE_VERSION": "NUMBER",
    "_SDC_SYNC_STARTED_AT": "NUMBER",
}
# The FOCUS model's prices here: Proactive Notifications has none, so its rows are left out.
PRICES = {"Conversations": "0.012", "Sessions": "0.01", "Alert Notifications": "0.002"}
# A shell set up for a real account: snowflake-local must still run locally.
PRODUCTION_SHELL = {
    "SNOWFLAKE_ACCOUNT": "xy12345.eu-central-1",
    "SNOWFLAKE_USER": "LOADER",
    "SNOWFLAKE_PASSWORD": "not-a-real-password",
    "SNOWFLAKE_ROLE": "LOADER_ROLE",
    "SNOWFLAKE_WAREHOUSE": "LOAD_WH",
    "SNOWFLAKE_DATABASE": "RAW",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    plugins = ["tap-kore-billing", "target-snowflake", "dbt-snowflake", "fakesnow"]
    run_meltano(["install", *plugins], tmp_path_factory.mktemp("snowflake-install"))


def expected_columns() -> dict[str, dict[str, str]]:
    """Per table, the columns target-snowflake makes of the tap's schema: names unquoted, so
    Snowflake folds them to upper case; date-times TIMESTAMP_NTZ, integers NUMBER, text TEXT."""
    tables = {}
    for entry in catalog_selecting(STREAMS)["streams"]:
        columns = {}
        for name, prop in entry["schema"]["properties"].items():
            types = prop.get("type", [])
            if prop.get("format") == "date-time":
                columns[name.upper()] = "TIMESTAMP_NTZ"
            elif "integer" in types:
                columns[name.upper()] = "NUMBER"
            elif "boolean" in types:
                columns[name.upper()] = "BOOLEAN"
            elif "array" in types:
                columns[name.upper()] = "VARIANT"
            else:
                columns[name.upper()] = "TEXT"
        tables[entry["tap_stream_id"].upper()] = {**columns, **METADATA_COLUMNS}
    return tables


def snapshot(workdir: Path, env: dict[str, str]) -> dict:
    """What one run left: the loaded tables' columns and sizes, staging sizes, the model."""
    columns: dict[str, dict[str, str]] = {}
    for row in query(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'KORE_BILLING' order by table_name, ordinal_position",
        workdir,
        env,
    ):
        columns.setdefault(row["TABLE_NAME"], {})[row["COLUMN_NAME"]] = row["DATA_TYPE"]
    [sizes] = query(
        "select (select count(*) from kore_billing.billing_sessions) as loaded_sessions, "
        "(select count(distinct billingsessionid) from kore_billing.billing_sessions) "
        "as distinct_sessions, "
        "(select count(*) from kore_billing.billing_usage_summary) as loaded_summary, "
        "(select count(*) from (select distinct botid, granularity, periodstart "
        "from kore_billing.billing_usage_summary) as keys) as distinct_summary, "
        "(select count(*) from analytics.stg_kore_billing__billing_sessions) as staged_sessions, "
        "(select count(*) from analytics.stg_kore_billing__billing_usage_summary) "
        "as staged_summary, "
        "(select sum(sessions) from analytics.kore_billing__audit_daily) as audited_sessions",
        workdir,
        env,
    )
    reconciliation = query(
        "select bot_id, granularity, period_start, unit, detail_count, summary_count, "
        "difference, status from analytics.kore_billing__reconciliation",
        workdir,
        env,
    )
    audit = query(
        "select billing_session_id, finding, detail from analytics.kore_billing__session_audit",
        workdir,
        env,
    )
    return {
        "columns": columns,
        "sizes": sizes,
        "reconciliation": reconciliation,
        "audit": sorted(map(json.dumps, audit)),
    }


def test_snowflake_local_pipeline_twice_flags_exactly_the_injected_app_days(installed, tmp_path):
    port = free_port()
    local = {
        "TARGET_SNOWFLAKE_PORT": str(port),  # the server, the target and dbt-snowflake follow it
        "SNOWFLAKE_LOCAL_DIR": str(tmp_path / "snowflake-local"),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'state.db'}",
    }
    # One case of each session finding, so the audit's SQL runs on real findings here too.
    today = datetime.now(UTC).date()
    cases = [
        ("longer_than_15_minutes", 1, today - timedelta(days=30)),
        ("overlaps_another_session", 2, today - timedelta(days=40)),
        ("outside_its_conversation", 1, today - timedelta(days=50)),
    ]
    with Sandbox(seed=51, apps=2, sessions=400, max_page_size=100, audit_cases=cases) as sb:
        planted = {
            (case["billingSessionIds"][0], case["finding"]) for case in sb.planted_audit_cases()
        }
        days = sorted({s["start"].date() for s in sb.expected()})
        injected = {
            (sb.bot_ids[0], days[4], "conversations"): 2,
            (sb.bot_ids[1], days[12], "alert_notifications"): -1,
        }
        sb.configure(
            summary_discrepancies=[
                {"botId": bot, "day": day.isoformat(), "unit": unit, "delta": delta}
                for (bot, day, unit), delta in injected.items()
            ],
            summary_polls=1,
        )
        pipeline = [LOCAL, "run", "tap-kore-billing", "target-snowflake", "dbt-snowflake:build"]
        env = {**tap_env(sb, TAP_KORE_BILLING_START_DATE=days[0].isoformat()), **local}
        with local_snowflake(tmp_path, local) as server:
            assert server["url"] == f"http://127.0.0.1:{port}"
            run_meltano(pipeline, tmp_path, env=env)
            first = snapshot(tmp_path, local)
            # The same run from a shell that holds a real account's SNOWFLAKE_* variables.
            SECRETS_SEEN.add(PRODUCTION_SHELL["SNOWFLAKE_PASSWORD"])
            run_meltano(pipeline, tmp_path, env={**env, **PRODUCTION_SHELL})
            second = snapshot(tmp_path, local)
            focus, per_type, focus_log = focus_on_snowflake(tmp_path, local)
            # kore-billing-report's reader of the local Snowflake (`make demo
            # WAREHOUSE=snowflake`): the models through dbt-snowflake's profile.
            fetched = fetch_dbt("dbt-snowflake", "snowflake-local", ROOT, {**os.environ, **local})
        sessions = len(sb.expected())

    # The tables and columns target-snowflake created, exactly.
    assert first["columns"] == expected_columns()
    # Everything loaded once, and staged once per key.
    sizes = first["sizes"]
    assert sizes["LOADED_SESSIONS"] == sizes["DISTINCT_SESSIONS"] == sessions
    assert sizes["STAGED_SESSIONS"] == sessions
    # The audit built on Snowflake too: every session on a day, each detail with UTC times.
    assert sizes["AUDITED_SESSIONS"] == sessions
    findings = [json.loads(row) for row in first["audit"]]
    assert {(row["BILLING_SESSION_ID"], row["FINDING"]) for row in findings} == planted
    for row in findings:
        assert re.search(r" \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d to ", row["DETAIL"]), row
        assert row["DETAIL"].startswith(f"Billing session {row['BILLING_SESSION_ID']} "), row
    assert sizes["STAGED_SUMMARY"] == sizes["DISTINCT_SUMMARY"] > 0

    rows = first["reconciliation"]
    calendar_days = (datetime.now(UTC).date() - days[0]).days + 1
    assert len(rows) == 4 * 2 * calendar_days  # every app-day since start_date, four units each
    assert sum(row["DETAIL_COUNT"] for row in rows) == sessions
    found = {
        (row["BOT_ID"], datetime.fromisoformat(row["PERIOD_START"]).date(), row["UNIT"]): row[
            "DIFFERENCE"
        ]
        for row in rows
        if row["STATUS"] == "mismatch"
    }
    # The summary counts `delta` more than the detail rows: difference = detail - summary.
    assert found == {key: -delta for key, delta in injected.items()}

    # The report reads the same mismatches and findings from Snowflake, and prices them.
    report = build(fetched.rows, priced=fetched.priced, source=fetched.source)
    assert {(c.bot_id, c.day, c.unit): c.difference for c in report.mismatches} == found
    assert {(f.id, f.rule) for f in report.findings} == planted
    assert report.verdict().startswith("VERDICT: 2 apps, "), report.verdict()

    # Second run: the lookback's copies were appended, and changed no count downstream.
    again = second["sizes"]
    assert again["LOADED_SESSIONS"] > again["DISTINCT_SESSIONS"] == sessions
    assert again["LOADED_SUMMARY"] > again["DISTINCT_SUMMARY"] == sizes["DISTINCT_SUMMARY"]
    assert (again["STAGED_SESSIONS"], again["STAGED_SUMMARY"]) == (
        sizes["STAGED_SESSIONS"],
        sizes["STAGED_SUMMARY"],
    )
    assert sorted(map(json.dumps, second["reconciliation"])) == sorted(map(json.dumps, rows))
    assert second["audit"] == first["audit"]
    assert second["columns"] == first["columns"]
    # The FOCUS model: FOCUS's names (quoted, so Snowflake keeps their case), every priced
    # session once at its price, the unpriced type left out and named in the log.
    assert list(focus[0])[:3] == ["BilledCost", "BillingAccountId", "BillingAccountName"]
    assert list(focus[0])[-4:] == [
        "x_BillingSessionType",
        "x_ExcessSessions",
        "x_DisputedCost",
        "x_UsageSummarySessions",
    ]
    billed: dict[str, Decimal] = {}
    for row in focus:
        kind = row["x_BillingSessionType"]
        billed[kind] = billed.get(kind, Decimal(0)) + Decimal(row["BilledCost"])
        assert Decimal(row["ListCost"]) == Decimal(row["PricingQuantity"]) * Decimal(PRICES[kind])
    assert billed == {kind: per_type[kind] * Decimal(PRICES[kind]) for kind in PRICES}
    assert "leaves out the billing sessions of type 'Proactive Notifications'" in focus_log
    # The data is where the environment says, one DuckDB file per database.
    assert (tmp_path / "snowflake-local" / "KORE_LOCAL.db").is_file()
    print(
        f"snowflake-local: {sessions} sessions, {sizes['LOADED_SUMMARY']} summary rows, "
        f"{len(rows)} reconciliation rows, {len(found)} mismatches found, {len(injected)} "
        f"injected; second run appended {again['LOADED_SESSIONS'] - sessions} session and "
        f"{again['LOADED_SUMMARY'] - sizes['LOADED_SUMMARY']} summary copies, counts unchanged; "
        f"{len(first['audit'])} audit findings"
    )


def focus_on_snowflake(
    workdir: Path, env: dict[str, str]
) -> tuple[list[dict], dict[str, int], str]:
    """kore_billing__focus built with PRICES (and its tests); its rows, the sessions loaded per
    type, and dbt's output."""
    prices = {"kore_billing_price_per_session": {k: float(v) for k, v in PRICES.items()}}
    build = [LOCAL, "invoke", "dbt-snowflake", "build", "--select", "kore_billing__focus+"]
    done = run_meltano(
        [*build, "--vars", json.dumps(prices)],
        workdir,
        env=env,
    )
    rows = query("select * from analytics.kore_billing__focus", workdir, env)
    found = query(
        "select billingsessiontype as kind, count(distinct billingsessionid) as sessions "
        "from kore_billing.billing_sessions group by 1",
        workdir,
        env,
    )
    return rows, {row["KIND"]: int(row["SESSIONS"]) for row in found}, done.stdout + done.stderr


def test_the_substitution_is_switched_on_by_the_snowflake_local_environment_only(tmp_path):
    """Every other environment runs target-snowflake as installed: the switch is unset there."""
    for environment, switch in (("snowflake-local", "1"), ("prod", "None"), ("dev", "None")):
        done = subprocess.run(
            [
                MELTANO,
                f"--environment={environment}",
                "invoke",
                "--print-var",
                "KORE_SNOWFLAKE_LOCAL",
                "target-snowflake",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                **PRODUCTION_SHELL,  # Meltano checks the target's required settings first
                "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.splitlines() == [f"KORE_SNOWFLAKE_LOCAL={switch}"], environment

"""An append-only load reconciles like an upserting one, on DuckDB and PostgreSQL.

The same sessions and summary rows are written twice, each in its loader's shape: once as an
upserting loader leaves them (one row per key, the newest), once as an append-only loader or a
re-read lookback does (every copy the tap sent, older ones with older `_sdc_extracted_at`, and
older summary copies with the counters of an earlier run). dbt builds both; the staging models
and kore_billing__reconciliation must agree row for row. The Snowflake emulation is covered by
tests/pipeline/test_snowflake.py, whose loader appends for real.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from helpers import PG, postgres_or_skip, postgres_pipeline_env, run_meltano

APPS = ("st-aaaaaaaa-0000-0000-0000-00000000000a", "st-bbbbbbbb-0000-0000-0000-00000000000b")
TYPES = {"Conversations": "conversations", "Alert Notifications": "alert_notifications"}
DAYS = [datetime(2025, 3, 1) + timedelta(days=n) for n in range(5)]
FIRST_RUN, SECOND_RUN = datetime(2025, 3, 6, 1), datetime(2025, 3, 6, 2)
UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")
# (tap name, DuckDB type, PostgreSQL type) of the columns the staging models read; the test
# data leaves the conversation and user columns null.
SESSIONS = [
    ("billingSessionId", "VARCHAR", "varchar"),
    ("botId", "VARCHAR", "varchar"),
    ("channel", "VARCHAR", "varchar"),
    ("billingSessionType", "VARCHAR", "varchar"),
    ("billingSessionStartDateTime", "TIMESTAMP", "timestamp"),
    ("billingSessionEndDateTime", "TIMESTAMP", "timestamp"),
    ("conversationSessionId", "VARCHAR", "varchar"),
    ("conversationSessionStartDateTime", "TIMESTAMP", "timestamp"),
    ("conversationSessionEndDateTime", "TIMESTAMP", "timestamp"),
    ("koreUserId", "VARCHAR", "varchar"),
    ("channelUserId", "VARCHAR", "varchar"),
    ("_sdc_extracted_at", "TIMESTAMP", "timestamp"),
]
SUMMARY = [
    ("botId", "VARCHAR", "varchar"),
    ("granularity", "VARCHAR", "varchar"),
    ("periodStart", "TIMESTAMP", "timestamp"),
    *((unit, "BIGINT", "bigint") for unit in ("requests", *UNITS)),
    ("_sdc_extracted_at", "TIMESTAMP", "timestamp"),
]


def loads() -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(upserted, appended): per table, the rows each kind of loader leaves after two runs.

    The second run re-reads some sessions (copies) and every summary period again, now with
    one conversation more on each day (published late): only the newest copy is true.
    """
    rng = random.Random(20)  # noqa: S311 - test data
    sessions: list[dict[str, Any]] = []
    copies: list[dict[str, Any]] = []
    for app in APPS:
        for day in DAYS:
            for n in range(rng.randint(2, 6)):
                kind = rng.choice(list(TYPES))
                start = day + timedelta(hours=1 + n)
                row: dict[str, Any] = {
                    "billingSessionId": uuid.UUID(int=rng.getrandbits(128)).hex[:24],
                    "botId": app,
                    "channel": "rtm",
                    "billingSessionType": kind,
                    "billingSessionStartDateTime": start,
                    "billingSessionEndDateTime": start + timedelta(minutes=5),
                    "_sdc_extracted_at": SECOND_RUN,
                }
                sessions.append(row)
                if rng.random() < 0.5:  # also sent by the first run: an older copy
                    copies.append({**row, "_sdc_extracted_at": FIRST_RUN})
    summary: list[dict[str, Any]] = []
    earlier: list[dict[str, Any]] = []
    for app in APPS:
        for day in DAYS:
            counts = dict.fromkeys(UNITS, 0)
            for session in sessions:
                if (
                    session["botId"] == app
                    and session["billingSessionStartDateTime"].date() == day.date()
                ):
                    counts[TYPES[session["billingSessionType"]]] += 1
            period = {"botId": app, "granularity": "day", "periodStart": day, "requests": 9}
            summary.append({**period, **counts, "_sdc_extracted_at": SECOND_RUN})
            before = {**counts, "conversations": max(counts["conversations"] - 1, 0)}
            earlier.append({**period, **before, "_sdc_extracted_at": FIRST_RUN})
    # One real discrepancy, in both loads: the summary bills app A one alert more on day 3.
    summary[2]["alert_notifications"] += 1
    upserted = {"billing_sessions": sessions, "billing_usage_summary": summary}
    appended = {
        "billing_sessions": copies[::2] + sessions + copies[1::2],
        "billing_usage_summary": earlier + summary,
    }
    return upserted, appended


def reconciliation(rows: list[tuple]) -> set[tuple]:
    assert rows, "kore_billing__reconciliation is empty"
    return set(rows)


RECONCILIATION = (
    "select bot_id, granularity, period_start, unit, detail_count, summary_count, difference, "
    "status from {models}.kore_billing__reconciliation"
)
STAGED = (
    "select (select count(*) from {models}.stg_kore_billing__billing_sessions), "
    "(select count(*) from {models}.stg_kore_billing__billing_usage_summary)"
)


@pytest.fixture(scope="module")
def dbt_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb", "dbt-postgres"], tmp_path_factory.mktemp("install"))


def write_duckdb(path: Path, tables: dict[str, list[dict]]) -> None:
    """target-duckdb's shape: lower-case names."""
    with duckdb.connect(str(path)) as db:
        db.execute("create schema kore_billing")
        for table, columns in (("billing_sessions", SESSIONS), ("billing_usage_summary", SUMMARY)):
            db.execute(
                f"create table kore_billing.{table} "
                f"({', '.join(f'{name.lower()} {kind}' for name, kind, _ in columns)})"
            )
            db.executemany(
                f"insert into kore_billing.{table} values ({', '.join('?' for _ in columns)})",  # noqa: S608
                [[row.get(name) for name, _, _ in columns] for row in tables[table]],
            )


def test_duckdb_append_only_load_reconciles_like_an_upserting_one(dbt_installed, tmp_path):
    results = []
    for kind, tables in zip(("upserted", "appended"), loads(), strict=True):
        database = tmp_path / f"{kind}.duckdb"
        (tmp_path / kind).mkdir()
        write_duckdb(database, tables)
        run_meltano(
            ["invoke", "dbt-duckdb:build"], tmp_path / kind, env={"DBT_DUCKDB_PATH": str(database)}
        )
        with duckdb.connect(str(database), read_only=True) as db:
            models = f"{database.stem}.analytics"
            staged = db.sql(STAGED.format(models=models)).fetchone()
            rows = db.sql(RECONCILIATION.format(models=models)).fetchall()
        results.append((staged, reconciliation(rows)))
    upserted, appended = loads()
    assert len(appended["billing_sessions"]) > len(upserted["billing_sessions"])
    assert results[1] == results[0]
    staged, model = results[0]
    assert staged == (len(upserted["billing_sessions"]), len(upserted["billing_usage_summary"]))
    assert [row[:4] for row in model if row[7] == "mismatch"] == [
        (APPS[0], "day", DAYS[2], "alert_notifications")
    ]


@pytest.fixture
def pg_schemas():
    postgres_or_skip()
    suffix = uuid.uuid4().hex[:8]
    # The loaded tables of each load, and the models built from each.
    names = [f"kore_{kind}_{suffix}" for kind in ("upserted", "appended", "m_up", "m_app")]
    yield names
    with psycopg.connect(**PG, autocommit=True) as conn:
        for name in (*names, f"{names[2]}_dbt_test__audit", f"{names[3]}_dbt_test__audit"):
            conn.execute(f"drop schema if exists {name} cascade")


def test_postgres_append_only_load_reconciles_like_an_upserting_one(
    dbt_installed, tmp_path, pg_schemas
):
    """MeltanoLabs target-postgres's shape: the tap's camelCase names, quoted."""
    results = []
    for schema, models, tables in zip(pg_schemas[:2], pg_schemas[2:], loads(), strict=True):
        (tmp_path / schema).mkdir()
        with psycopg.connect(**PG, autocommit=True) as conn:
            conn.execute(f"create schema {schema}")
            for table, columns in (
                ("billing_sessions", SESSIONS),
                ("billing_usage_summary", SUMMARY),
            ):
                definitions = ", ".join(f'"{name}" {kind}' for name, _, kind in columns)
                conn.execute(f"create table {schema}.{table} ({definitions})")
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"insert into {schema}.{table} values "  # noqa: S608
                        f"({', '.join('%s' for _ in columns)})",
                        [[row.get(name) for name, _, _ in columns] for row in tables[table]],
                    )
        run_meltano(
            ["invoke", "dbt-postgres:build"],
            tmp_path / schema,
            # Where target-postgres would have loaded: dbt-postgres's source_schema follows.
            env=postgres_pipeline_env(schema, models),
        )
        with psycopg.connect(**PG) as conn:
            staged = conn.execute(STAGED.format(models=models)).fetchone()
            rows = conn.execute(RECONCILIATION.format(models=models)).fetchall()
        results.append((staged, reconciliation(rows)))
    assert results[1] == results[0]
    upserted, _ = loads()
    assert results[0][0] == (
        len(upserted["billing_sessions"]),
        len(upserted["billing_usage_summary"]),
    )

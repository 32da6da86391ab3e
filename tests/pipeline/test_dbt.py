"""The dbt project in transform/, run as users run it: through the Meltano dbt utilities.

DuckDB: hand-made rows in target-duckdb's shape (lower-case column names, naive UTC timestamps)
go into a DuckDB file, `meltano invoke dbt-duckdb` builds the project into it, and the tests read
kore_billing__reconciliation back with the duckdb version target-duckdb needs. PostgreSQL: one
`meltano run tap-kore-billing target-postgres dbt-postgres:build` against the emulator, with the
loader and the models in schemas of their own.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml
from helpers import (
    PG,
    ROOT,
    SECRETS_SEEN,
    SESSION_COLUMNS,
    SUMMARY_COLUMNS,
    postgres_pipeline_env,
    postgres_schemas,
    run_meltano,
    tap_env,
)

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
MODELS = "analytics"  # the utilities' default schema for the models

UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")

APP_A, APP_B = "st-aaaaaaaa-0000-0000-0000-000000000001", "st-bbbbbbbb-0000-0000-0000-000000000002"
DAY1, DAY2, DAY3 = datetime(2025, 3, 1), datetime(2025, 3, 2), datetime(2025, 3, 3)
MARCH = datetime(2025, 3, 1)


def this_month() -> datetime:
    """Start of the current month, UTC: a period that has not ended."""
    return datetime.now(UTC).replace(tzinfo=None, day=1, hour=0, minute=0, second=0, microsecond=0)


def session(bot: str, kind: str, start: datetime, minutes: int = 10) -> dict:
    return {
        "billingsessionid": uuid.uuid4().hex[:24],
        "botid": bot,
        "channel": "rtm",
        "billingsessiontype": kind,
        "billingsessionstartdatetime": start,
        "billingsessionenddatetime": start + timedelta(minutes=minutes),
    }


def summary(bot: str, granularity: str, start: datetime, **counters: int | None) -> dict:
    return {
        "botid": bot,
        "granularity": granularity,
        "periodstart": start,
        "requests": 5,
        **dict.fromkeys(UNITS, 0),
        **counters,
    }


def scenario() -> tuple[list[dict], list[dict]]:
    """Two apps in March 2025, and app A in the current month.

    Against the summary, by session start: app A's 1 March has one alert less in the details
    than the summary counted (-1), and proactive notifications the summary left out (+1).
    Everything else matches; app A's session from 23:55 on 2 March to 00:05 on 3 March only
    matches when periods are taken from the start.
    """
    sessions = [
        session(APP_A, "Conversations", DAY1.replace(hour=10)),
        session(APP_A, "Conversations", DAY1.replace(hour=10, minute=30)),
        session(APP_A, "Alert Notifications", DAY1.replace(hour=11), minutes=0),
        session(APP_A, "Proactive Notifications", DAY1.replace(hour=12), minutes=0),
        *(session(APP_A, "Conversations", DAY2.replace(hour=9 + i)) for i in range(3)),
        session(APP_A, "Conversations", DAY2.replace(hour=23, minute=55)),  # ends on DAY3
        session(APP_A, "Conversations", datetime(2025, 2, 28, 10)),  # before any summary
        session(APP_B, "Conversations", DAY1.replace(hour=15, minute=20)),
        session(APP_B, "Voice Minutes", datetime(2025, 3, 5, 8)),  # a type the seed lacks
        session(APP_A, "Conversations", this_month()),
    ]
    summaries = [
        summary(
            APP_A,
            "day",
            DAY1,
            conversations=2,
            alert_notifications=2,
            proactive_notifications=None,
        ),
        summary(APP_A, "day", DAY2, conversations=4),
        summary(APP_A, "day", DAY3),
        summary(APP_A, "month", this_month()),
        summary(APP_B, "hour", DAY1.replace(hour=15), conversations=1),
        summary(
            "ALL", "month", MARCH, conversations=7, alert_notifications=1, proactive_notifications=1
        ),
    ]
    return sessions, summaries


def write_database(path: Path, sessions: list[dict], summaries: list[dict]) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute("create schema kore_billing")
        for table, columns, rows in (
            ("billing_sessions", SESSION_COLUMNS, sessions),
            ("billing_usage_summary", SUMMARY_COLUMNS, summaries),
        ):
            db.execute(
                f"create table kore_billing.{table} "
                f"({', '.join(f'{name} {kind}' for name, kind in columns.items())})"
            )
            placeholders = ", ".join("?" for _ in columns)
            db.executemany(
                f"insert into kore_billing.{table} values ({placeholders})",  # noqa: S608
                [[row.get(name) for name in columns] for row in rows],
            )


def dbt_results(workdir: Path) -> dict[str, dict]:
    """dbt's run_results.json of the last invocation: node name -> result."""
    results = json.loads((workdir / "dbt-target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r for r in results}


def reconciliation(path: Path) -> dict[tuple, dict]:
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"select * from {path.stem}.{MODELS}.kore_billing__reconciliation")  # noqa: S608
        names = [d[0] for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    keyed = {(r["bot_id"], r["granularity"], r["period_start"], r["unit"]): r for r in rows}
    assert len(keyed) == len(rows)
    return keyed


def mismatches(rows: dict[tuple, dict]) -> dict[tuple, int]:
    return {key: row["difference"] for key, row in rows.items() if row["status"] == "mismatch"}


@pytest.fixture(scope="session")
def dbt_duckdb_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb"], tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def built(dbt_duckdb_installed, tmp_path_factory):
    """The scenario built once with the defaults: dbt output, run results, rows, the file."""
    workdir = tmp_path_factory.mktemp("dbt-duckdb")
    database = workdir / "reconcile.duckdb"
    write_database(database, *scenario())
    done = run_meltano(
        ["invoke", "dbt-duckdb:build"], workdir, env={"DBT_DUCKDB_PATH": str(database)}
    )
    return done.stdout + done.stderr, dbt_results(workdir), reconciliation(database), database


def test_reconciliation_has_one_row_per_summary_period_and_unit(built):
    _, _, rows, _ = built
    periods = Counter((bot, granularity) for bot, granularity, _, _ in rows)
    assert periods == {
        (APP_A, "day"): 12,
        (APP_A, "month"): 4,
        (APP_B, "hour"): 4,
        ("ALL", "month"): 4,
    }
    assert {unit for *_, unit in rows} == set(UNITS)


def test_matching_periods_and_all_apps(built):
    _, _, rows, _ = built
    march = {unit: rows["ALL", "month", MARCH, unit] for unit in UNITS}
    # Both apps' sessions, nothing from February, and not the type the seed does not map.
    assert {u: (r["detail_count"], r["summary_count"]) for u, r in march.items()} == {
        "sessions": (0, 0),
        "conversations": (7, 7),
        "alert_notifications": (1, 1),
        "proactive_notifications": (1, 1),
    }
    assert {r["status"] for r in march.values()} == {"match"}
    day2 = rows[APP_A, "day", DAY2, "conversations"]
    assert (day2["detail_count"], day2["summary_count"], day2["status"]) == (4, 4, "match")
    assert day2["period_end"] == DAY3
    assert day2["reconciled_on"] == "start"


def test_injected_mismatches_are_found_with_their_difference(built):
    _, _, rows, _ = built
    assert mismatches(rows) == {
        (APP_A, "day", DAY1, "alert_notifications"): -1,
        (APP_A, "day", DAY1, "proactive_notifications"): 1,
    }
    alerts = rows[APP_A, "day", DAY1, "alert_notifications"]
    assert (alerts["detail_count"], alerts["summary_count"]) == (1, 2)
    # A counter the summary left out stays null, and counts as 0 in the difference.
    left_out = rows[APP_A, "day", DAY1, "proactive_notifications"]
    assert (left_out["detail_count"], left_out["summary_count"]) == (1, None)


def test_a_period_that_has_not_ended_is_open(built):
    _, _, rows, _ = built
    month = {unit: rows[APP_A, "month", this_month(), unit] for unit in UNITS}
    assert {r["status"] for r in month.values()} == {"open"}
    assert (month["conversations"]["detail_count"], month["conversations"]["difference"]) == (1, 1)
    assert [k for k, r in rows.items() if r["status"] == "open"] == [
        (APP_A, "month", this_month(), unit) for unit in UNITS
    ]
    hour = rows[APP_B, "hour", DAY1.replace(hour=15), "conversations"]
    assert (hour["detail_count"], hour["status"]) == (1, "match")


def test_unmapped_session_type_is_reported_as_a_warning(built):
    output, results, _, database = built
    check = results["kore_billing__session_types_are_mapped"]
    assert (check["status"], check["failures"]) == ("warn", 1)
    assert "Warning in test kore_billing__session_types_are_mapped" in output
    with duckdb.connect(str(database), read_only=True) as db:
        stored = db.sql(
            f"select * from {database.stem}.{MODELS}_dbt_test__audit."  # noqa: S608
            "kore_billing__session_types_are_mapped"
        ).fetchall()
    assert stored == [("Voice Minutes", 1)], "the unmapped types are kept for the user to see"
    failed = [name for name, r in results.items() if r["status"] not in ("pass", "success")]
    assert failed == ["kore_billing__session_types_are_mapped"], "everything else passes"


def test_reconcile_on_end_files_sessions_by_their_end(dbt_duckdb_installed, tmp_path):
    database = tmp_path / "reconcile.duckdb"
    write_database(database, *scenario())
    run_meltano(
        ["invoke", "dbt-duckdb", "build", "--vars", '{"reconcile_on": "end"}'],
        tmp_path,
        env={"DBT_DUCKDB_PATH": str(database)},
    )
    rows = reconciliation(database)
    # The session from 23:55 to 00:05 moves from 2 March to 3 March.
    assert mismatches(rows) == {
        (APP_A, "day", DAY1, "alert_notifications"): -1,
        (APP_A, "day", DAY1, "proactive_notifications"): 1,
        (APP_A, "day", DAY2, "conversations"): -1,
        (APP_A, "day", DAY3, "conversations"): 1,
    }
    assert {row["reconciled_on"] for row in rows.values()} == {"end"}


def test_duckdb_pipeline_runs_again_after_dbt_built_into_the_file(dbt_duckdb_installed, tmp_path):
    """`make demo` twice: target-duckdb (duckdb 1.2.2) must still open the file dbt wrote."""
    database = tmp_path / "kore_billing.duckdb"
    with Sandbox(seed=41, apps=2, sessions=300, late=3, new=3, max_page_size=100) as sb:
        SECRETS_SEEN.add(sb.client_secret)
        env = {
            **tap_env(sb),
            # Only the loader's file is named: dbt-duckdb's `path` follows it.
            "TARGET_DUCKDB_FILEPATH": str(database),
        }
        run_meltano(["install", "target-duckdb", "tap-kore-billing"], tmp_path)
        for _ in range(2):
            run_meltano(
                ["run", "tap-kore-billing", "target-duckdb", "dbt-duckdb:build"], tmp_path, env=env
            )
            with duckdb.connect(str(database), read_only=True) as db:
                staged = db.sql(
                    f"select billing_session_id from {database.stem}.{MODELS}."  # noqa: S608
                    "stg_kore_billing__billing_sessions"
                ).fetchall()
            assert sorted(row[0] for row in staged) == sorted(
                s["billingSessionId"] for s in sb.expected()
            )
            sb.reveal()


def test_each_dbt_utility_reads_the_tables_where_its_loader_writes_them():
    """`meltano run` passes nothing from the loader to dbt: the two settings must agree."""
    plugins = yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]
    loaders = {plugin["name"]: plugin for plugin in plugins["loaders"]}
    utilities = {plugin["name"]: plugin for plugin in plugins["utilities"]}
    for adapter in ("duckdb", "postgres", "snowflake"):
        loader, utility = loaders[f"target-{adapter}"], utilities[f"dbt-{adapter}"]
        settings = {setting["name"]: setting for setting in utility["settings"]}
        source_schema = settings["source_schema"]
        assert source_schema["value"] == loader["config"]["default_target_schema"], adapter
        assert source_schema["env_aliases"] == [f"TARGET_{adapter.upper()}_DEFAULT_TARGET_SCHEMA"]
    duckdb_path = {s["name"]: s for s in utilities["dbt-duckdb"]["settings"]}["path"]
    assert duckdb_path["value"] == loaders["target-duckdb"]["config"]["filepath"]
    assert duckdb_path["env_aliases"] == ["TARGET_DUCKDB_FILEPATH"]


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def pg_schemas():
    with postgres_schemas("kore") as names:
        yield names


def test_postgres_pipeline_flags_exactly_the_injected_discrepancies(tmp_path, pg_schemas):
    """`meltano run tap-kore-billing target-postgres dbt-postgres:build`, configured only from
    environment variables: both streams load into the loader's schema, dbt reads them there,
    and the emulator's injected disagreements are the only mismatches."""
    load_schema, models_schema = pg_schemas
    with Sandbox(seed=42, apps=2, sessions=400, max_page_size=100) as sb:
        SECRETS_SEEN.add(sb.client_secret)
        days = sorted({s["start"].date() for s in sb.expected()})
        injected = {
            (sb.bot_ids[0], days[3], "conversations"): 2,
            (sb.bot_ids[1], days[10], "alert_notifications"): -1,
        }
        sb.configure(
            summary_discrepancies=[
                {"botId": bot, "day": day.isoformat(), "unit": unit, "delta": delta}
                for (bot, day, unit), delta in injected.items()
            ],
            summary_polls=1,
        )
        env = {
            "TAP_KORE_BILLING_API_URL": sb.url,
            "TAP_KORE_BILLING_CLIENT_ID": sb.client_id,
            "TAP_KORE_BILLING_CLIENT_SECRET": sb.client_secret,
            "TAP_KORE_BILLING_API_SCOPE": "bot",
            "TAP_KORE_BILLING_BOT_IDS": json.dumps(sb.bot_ids),
            "TAP_KORE_BILLING_START_DATE": days[0].isoformat(),
            "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
            "TAP_KORE_BILLING_SUMMARY_POLL_SECONDS": "0.05",
            **postgres_pipeline_env(load_schema, models_schema),
        }
        run_meltano(["install", "tap-kore-billing", "target-postgres", "dbt-postgres"], tmp_path)
        run_meltano(
            ["run", "tap-kore-billing", "target-postgres", "dbt-postgres:build"], tmp_path, env=env
        )
        sessions = len(sb.expected())

    with psycopg.connect(**PG) as conn:
        rows = conn.execute(
            "select bot_id, period_start, unit, detail_count, summary_count, difference, "  # noqa: S608
            f"status from {models_schema}.kore_billing__reconciliation"
        ).fetchall()
        loaded = conn.execute(
            f"select count(*) from {load_schema}.billing_usage_summary"  # noqa: S608
        ).fetchone()
    assert loaded is not None
    assert loaded[0] > 0
    # Every app-day from start_date to today, four units each; every session counted once.
    calendar_days = (datetime.now(UTC).date() - days[0]).days + 1
    assert len(rows) == 4 * 2 * calendar_days
    assert sum(row[3] for row in rows) == sessions
    found = {
        (bot, period.date(), unit): difference
        for bot, period, unit, _, _, difference, status in rows
        if status == "mismatch"
    }
    # The summary counts `delta` more than the detail rows: difference = detail - summary.
    assert found == {key: -delta for key, delta in injected.items()}
    print(
        f"PostgreSQL end to end: {sessions} sessions, {loaded[0]} summary rows, "
        f"{len(rows)} reconciliation rows, {len(found)} mismatches found, {len(injected)} injected"
    )
    assert {row[1].date() for row in rows if row[6] == "open"} <= {datetime.now(UTC).date()}

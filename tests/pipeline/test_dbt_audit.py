"""The billing audit (transform/models/audit), built through Meltano as users build it.

Hand-made billing sessions (tests/audit_data.py) go into a DuckDB file in target-duckdb's shape
and `meltano invoke dbt-duckdb:build` builds the project into it: each finding at its edges,
clean accounts drawn from a seed (no finding at all), and cases planted in them on days and apps
drawn from the seed (exactly those found). The edge cases then run on PostgreSQL in
target-postgres's shape, and must give the same rows there.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import date, timedelta

import psycopg
import pytest
from audit_build import (
    AUDIT_DAILY,
    CONVERSATION_AUDIT,
    SESSION_AUDIT,
    build_duckdb,
    columns_of,
    read_duckdb,
    write_postgres,
)
from audit_data import (
    EDGE_BOT,
    EDGE_DAY,
    FINDINGS,
    LONGER,
    OUTSIDE,
    OVERLAPS,
    TOLERANCE,
    Account,
    clean_account,
    daily_expectation,
    edge_account,
    equal_start_case,
    plant,
)
from helpers import (
    PG,
    draw_seed,
    postgres_pipeline_env,
    postgres_schemas,
    run_meltano,
)

COUNTS = (*FINDINGS, "over_counted_conversations", "excess_sessions")


def findings_of(rows: list[dict]) -> dict[tuple[str, str], str | None]:
    found = {(r["billing_session_id"], r["finding"]): r["other_billing_session_id"] for r in rows}
    assert len(found) == len(rows), "one row per billing session and finding"
    return found


def judged(rows: list[dict]) -> dict[tuple[str, str], tuple[int, int | None, int]]:
    return {
        (r["bot_id"], r["conversation_session_id"]): (
            r["billing_sessions"],
            r["expected_at_most"],
            r["excess_sessions"],
        )
        for r in rows
    }


def nonzero_days(rows: list[dict]) -> dict[tuple[str, date], dict[str, int]]:
    return {
        (r["bot_id"], r["billing_day"]): {name: r[name] for name in COUNTS if r[name]}
        for r in rows
        if any(r[name] for name in COUNTS)
    }


@pytest.fixture(scope="module")
def dbt_duckdb_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb"], tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def edge(dbt_duckdb_installed, tmp_path_factory):
    acc = edge_account()
    _, database, results, _ = build_duckdb(tmp_path_factory.mktemp("edge"), acc.rows)
    models = {m: read_duckdb(database, m) for m in (SESSION_AUDIT, CONVERSATION_AUDIT, AUDIT_DAILY)}
    columns = {m: columns_of(database, m) for m in (*models, "kore_billing__reconciliation")}
    return acc, results, models, columns


def test_each_finding_is_flagged_past_its_tolerance_and_not_at_it(edge):
    acc, _, models, _ = edge
    assert findings_of(models[SESSION_AUDIT]) == acc.findings
    by_finding = Counter(finding for _, finding in acc.findings)
    assert by_finding == {LONGER: 2, OVERLAPS: 5, OUTSIDE: 3}  # the cases the data plants


def test_conversations_hold_one_billing_session_per_15_minutes(edge):
    acc, _, models, _ = edge
    rows = models[CONVERSATION_AUDIT]
    assert judged(rows) == acc.conversations
    over = {r["conversation_session_id"] for r in rows if r["status"] == "over_counted"}
    assert over == {conv for (_, conv), (_, _, excess) in acc.conversations.items() if excess}
    assert len(over) == 1  # 15:00 billed twice; 15:01 billed twice is due


def test_each_detail_names_the_session_its_times_and_the_rule(edge):
    acc, _, models, _ = edge
    rows = {r["billingSessionId"]: r for r in acc.rows}
    for found in models[SESSION_AUDIT]:
        row, detail = rows[found["billing_session_id"]], found["detail"]
        start, end = row["billingSessionStartDateTime"], row["billingSessionEndDateTime"]
        assert detail.startswith(f"Billing session {row['billingSessionId']} "), detail
        # A time the row lacks is said in words (a null would make the whole sentence null).
        shown = [f"{t:%Y-%m-%d %H:%M:%S}" if t else "an unknown time" for t in (start, end)]
        assert f"{shown[0]} to {shown[1]} UTC" in detail
        assert f"the {TOLERANCE} s tolerance." in detail
        minutes, rest = divmod(found["excess_seconds"], 60)
        if found["finding"] == LONGER:
            length = int((end - start).total_seconds())
            assert f"lasted {length // 60} min {length % 60} s" in detail
            assert "at most 15 minutes" in detail
        elif found["finding"] == OVERLAPS:
            other = found["other_billing_session_id"]
            assert f"overlaps billing session {other} " in detail
            assert f"by {minutes} min {rest} s:" in detail
        else:
            assert f"its conversation session {row['conversationSessionId']} " in detail
            assert f"{minutes} min {rest} s" in detail


def test_the_day_counts_each_finding_and_the_excess(edge):
    acc, _, models, _ = edge
    days = {(r["bot_id"], r["billing_day"]): r for r in models[AUDIT_DAILY]}
    sessions = Counter(
        (
            r["botId"],
            r["billingSessionStartDateTime"] and r["billingSessionStartDateTime"].date(),
        )
        for r in acc.rows
    )
    assert {key: row["sessions"] for key, row in days.items()} == dict(sessions)
    assert nonzero_days(models[AUDIT_DAILY]) == daily_expectation(acc)
    day = days[EDGE_BOT, EDGE_DAY.date()]
    assert day["flagged_sessions"] == len({session for session, _ in acc.findings})
    assert days[EDGE_BOT, None]["sessions"] == 1  # the session without a start
    assert {row["dated_on"] for row in days.values()} == {"start"}


def test_nulls_fail_no_test_and_without_a_price_there_is_no_amount(edge):
    _, results, _, columns = edge
    assert {
        name: r["status"] for name, r in results.items() if r["status"] not in ("pass", "success")
    } == {"kore_billing__session_types_are_mapped": "warn"}  # the row without a type
    assert any(name.startswith("not_null_kore_billing__session_audit") for name in results)
    assert results["kore_billing__audit_daily_adds_up"]["status"] == "pass"
    for model, names in columns.items():
        assert [c for c in names if c.endswith(("_amount", "_price"))] == [], model


def random_account(seed: int) -> tuple[Account, random.Random, list[str], list[date]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    apps = [f"st-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(rng.randint(2, 4))]
    first = date(2025, 1, 1) + timedelta(days=rng.randrange(300))
    days = sorted(rng.sample([first + timedelta(days=n) for n in range(45)], 8))
    return clean_account(rng, apps, days), rng, apps, days


def test_a_clean_random_account_has_no_finding(dbt_duckdb_installed, tmp_path):
    seed = draw_seed()
    acc, *_ = random_account(seed)
    _, database, _, _ = build_duckdb(tmp_path, acc.rows)
    assert read_duckdb(database, SESSION_AUDIT) == [], f"seed {seed}"
    conversations = read_duckdb(database, CONVERSATION_AUDIT)
    assert judged(conversations) == acc.conversations, f"seed {seed}"
    assert {r["status"] for r in conversations} == {"ok"}, f"seed {seed}"
    daily = read_duckdb(database, AUDIT_DAILY)
    assert nonzero_days(daily) == {}, f"seed {seed}"
    assert sum(r["sessions"] for r in daily) == len(acc.rows)


def test_cases_planted_on_random_days_and_apps_are_found_and_nothing_else(
    dbt_duckdb_installed, tmp_path
):
    seed = draw_seed()
    acc, rng, apps, days = random_account(seed)
    window = [days[0] + timedelta(days=n) for n in range((days[-1] - days[0]).days + 1)]
    for finding in (*FINDINGS, None):
        for _ in range(rng.randint(1, 3)):
            plant(acc, rng, rng.choice(apps), rng.choice(window), finding)
    equal_start_case(acc, rng, rng.choice(apps), rng.choice(window))
    _, database, _, _ = build_duckdb(tmp_path, acc.rows)
    assert findings_of(read_duckdb(database, SESSION_AUDIT)) == acc.findings, f"seed {seed}"
    assert judged(read_duckdb(database, CONVERSATION_AUDIT)) == acc.conversations, f"seed {seed}"
    daily = read_duckdb(database, AUDIT_DAILY)
    assert nonzero_days(daily) == daily_expectation(acc), f"seed {seed}"
    for row in daily:  # each planted case breaks one rule only
        assert row["flagged_sessions"] == sum(row[f] for f in FINDINGS), f"seed {seed}"


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def pg_schemas():
    with postgres_schemas("kore_audit") as names:
        yield names


def test_postgres_gives_the_same_audit_as_duckdb(edge, tmp_path, pg_schemas):
    acc, duckdb_results, duckdb_models, _ = edge
    load_schema, models_schema = pg_schemas
    write_postgres(load_schema, acc.rows)
    run_meltano(["install", "dbt-postgres"], tmp_path)
    run_meltano(
        ["invoke", "dbt-postgres:build"],
        tmp_path,
        env=postgres_pipeline_env(load_schema, models_schema),
    )
    results = json.loads((tmp_path / "dbt-target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in results}
    assert statuses == {name: r["status"] for name, r in duckdb_results.items()}
    with psycopg.connect(**PG) as conn:
        for model, rows in duckdb_models.items():
            cursor = conn.execute(f"select * from {models_schema}.{model}")  # noqa: S608
            names = [d.name for d in cursor.description or []]
            found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            assert names == list(rows[0]), model
            assert sorted(map(repr, found)) == sorted(map(repr, rows)), model
    print(f"PostgreSQL: {len(duckdb_models[SESSION_AUDIT])} findings, as on DuckDB")

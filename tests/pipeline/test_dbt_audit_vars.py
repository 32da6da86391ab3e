"""The dbt vars around the audit, on DuckDB through Meltano: a schema without the tap's billing
tables (fails, unless kore_billing_allow_missing_sources), kore_billing_price_per_session (amounts
= quantity x price), and the tolerance and reconcile_on moving the
audit's edges."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from audit_build import AUDIT_DAILY, CONVERSATION_AUDIT, SESSION_AUDIT, build_duckdb, read_duckdb
from audit_data import LONGER, OUTSIDE, OVERLAPS, WINDOW, Account, edge_account, seconds
from helpers import run_meltano

RECONCILIATION = "kore_billing__reconciliation"
UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")
APP_P, APP_Q = "st-p0000000-0000-0000-0000-000000000001", "st-q0000000-0000-0000-0000-000000000002"
DAY = datetime(2025, 4, 2)
PRICES = {"Conversations": 0.25, "Sessions": 0.1, "Alert Notifications": 0.05}


@pytest.fixture(scope="module")
def dbt_duckdb_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb"], tmp_path_factory.mktemp("install"))


def test_a_schema_without_the_billing_tables_fails_the_build_in_one_line(
    dbt_duckdb_installed, tmp_path
):
    wrong = {"kore_billing_schema": "kore_billing_typo"}
    output, _, results, code = build_duckdb(
        tmp_path, edge_account().rows, dbt_vars=wrong, check=False
    )
    assert code != 0
    for table in ("billing_sessions", "billing_usage_summary"):
        lines = [line.strip() for line in output.splitlines() if f"no table {table} " in line]
        assert lines, output[-3000:]
        # One line: the schema, the database (the DuckDB file's catalog), the var and the way out.
        assert lines[0].startswith(
            f"schema kore_billing_typo in database audit has no table {table} "
        )
        assert "set var kore_billing_schema " in lines[0]
        assert lines[0].endswith(
            "or var kore_billing_allow_missing_sources: true to build empty models before the"
            " first load."
        )
    for model in (SESSION_AUDIT, CONVERSATION_AUDIT, AUDIT_DAILY, RECONCILIATION):
        assert results[model]["status"] == "skipped", model


def test_with_the_opt_in_the_models_build_empty(dbt_duckdb_installed, tmp_path):
    allowed = {
        "kore_billing_schema": "kore_billing_typo",
        "kore_billing_allow_missing_sources": True,
    }
    output, database, results, _ = build_duckdb(tmp_path, edge_account().rows, dbt_vars=allowed)
    for table in ("billing_sessions", "billing_usage_summary", "apps", "app_links"):
        assert f'"audit"."kore_billing_typo"."{table}" does not exist (yet)' in output
    assert {r["status"] for r in results.values()} <= {"pass", "success"}
    for model in (SESSION_AUDIT, CONVERSATION_AUDIT, AUDIT_DAILY, RECONCILIATION):
        assert read_duckdb(database, model) == [], model


def priced_account() -> tuple[Account, list[dict]]:
    """App P on DAY: a conversation of 15:00 billed three times (2 excess), a session of 20
    minutes (flagged), an alert, a session of the older type; the summary bills one conversation
    more than listed. App Q: a conversation and a proactive notification, which has no price."""
    acc = Account()
    at = DAY.replace(hour=9)
    acc.conversation(APP_P, acc.user(), at, WINDOW, splits=[(0, 300), (300, 600), (600, WINDOW)])
    [long_one] = acc.conversation(APP_P, acc.user(), at, 1200, splits=[(0, 1200)])
    acc.expect(long_one, LONGER)
    acc.session(APP_P, acc.user(), at, at + seconds(1), kind="Alert Notifications")
    acc.session(APP_P, acc.user(), at, at + seconds(600), kind="Sessions")
    acc.conversation(APP_Q, acc.user(), at, 600)
    acc.session(APP_Q, acc.user(), at, at + seconds(1), kind="Proactive Notifications")
    counted = Counter(r["billingSessionType"] for r in acc.rows if r["botId"] == APP_P)
    summary = {
        "botid": APP_P,
        "granularity": "day",
        "periodstart": DAY,
        "requests": 1,
        "sessions": counted["Sessions"],
        "conversations": counted["Conversations"] + 1,
        "alert_notifications": counted["Alert Notifications"],
        "proactive_notifications": 0,
    }
    return acc, [summary]


def price(kind: str) -> Decimal:
    return Decimal(str(PRICES[kind]))


def test_with_prices_the_amounts_are_quantities_times_prices(dbt_duckdb_installed, tmp_path):
    acc, summaries = priced_account()
    priced = {"kore_billing_price_per_session": PRICES}
    _, database, _, _ = build_duckdb(tmp_path, acc.rows, summaries, dbt_vars=priced)
    days = {row["bot_id"]: row for row in read_duckdb(database, AUDIT_DAILY)}
    p_rows = [r for r in acc.rows if r["botId"] == APP_P]
    assert days[APP_P]["billed_amount"] == sum(price(r["billingSessionType"]) for r in p_rows)
    flagged = {session for session, _ in acc.findings}
    assert days[APP_P]["flagged_amount"] == price("Conversations") * len(flagged) > 0
    assert days[APP_P]["excess_sessions"] == 2
    assert days[APP_P]["excess_amount"] == price("Conversations") * 2
    # App Q's notification has no price: its day's billed amount is unknown, not too low.
    assert days[APP_Q]["billed_amount"] is None
    assert (days[APP_Q]["flagged_amount"], days[APP_Q]["excess_amount"]) == (0, 0)

    rows = {
        row["unit"]: row
        for row in read_duckdb(database, RECONCILIATION)
        if row["bot_id"] == APP_P and row["granularity"] == "day"
    }
    conversations = rows["conversations"]
    unit = price("Conversations")
    assert conversations["unit_price"] == unit
    assert conversations["detail_amount"] == conversations["detail_count"] * unit
    assert conversations["summary_amount"] == conversations["summary_count"] * unit
    assert conversations["difference_amount"] == -unit  # the summary bills one more
    assert rows["sessions"]["unit_price"] == price("Sessions")
    assert rows["alert_notifications"]["difference_amount"] == 0
    proactive = rows["proactive_notifications"]
    assert (proactive["unit_price"], proactive["detail_amount"]) == (None, None)


@pytest.fixture(scope="module")
def strict_by_end(dbt_duckdb_installed, tmp_path_factory):
    """The edge cases and a session across midnight, with no tolerance, dated by their end."""
    acc = edge_account()
    midnight = DAY.replace(hour=0) + timedelta(days=1)
    across = acc.session(APP_P, acc.user(), midnight - seconds(600), midnight + seconds(600))
    dbt_vars = {"kore_billing_audit_tolerance_seconds": 0, "reconcile_on": "end"}
    _, database, _, _ = build_duckdb(tmp_path_factory.mktemp("strict"), acc.rows, dbt_vars=dbt_vars)
    return acc, across, {m: read_duckdb(database, m) for m in (SESSION_AUDIT, AUDIT_DAILY)}


def test_without_tolerance_the_tolerated_edges_are_flagged(strict_by_end):
    acc, across, models = strict_by_end
    found = {(r["billing_session_id"], r["finding"]) for r in models[SESSION_AUDIT]}
    tolerated = found - set(acc.findings)
    # The session of 15:00 + 60 s, the overlap of 60 s, the start 60 s before its conversation,
    # and the session of 20 minutes across midnight.
    assert Counter(finding for _, finding in tolerated) == {LONGER: 2, OVERLAPS: 1, OUTSIDE: 1}
    assert (across, LONGER) in tolerated
    assert set(acc.findings) <= found
    assert {r["detail"].endswith("the 0 s tolerance.") for r in models[SESSION_AUDIT]} == {True}


def test_reconcile_on_end_dates_a_session_by_its_end(strict_by_end):
    _, across, models = strict_by_end
    [row] = [r for r in models[SESSION_AUDIT] if r["billing_session_id"] == across]
    next_day = (DAY + timedelta(days=1)).date()
    assert row["billing_day"] == next_day
    [day] = [r for r in models[AUDIT_DAILY] if r["bot_id"] == APP_P]
    assert (day["billing_day"], day["sessions"], day["longer_than_15_minutes"]) == (next_day, 1, 1)
    assert {r["dated_on"] for r in models[AUDIT_DAILY]} == {"end"}

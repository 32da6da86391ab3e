"""Apps by name and routing family, end to end on PostgreSQL: `meltano run tap-kore-billing
target-postgres dbt-postgres:build` configured only from environment variables, with one Parent
in bot_ids, its linked apps read through include_linked_apps, one of them unreadable."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from helpers import PG, SECRETS_SEEN, postgres_pipeline_env, postgres_schemas, run_meltano

from tap_kore_billing.sandbox import Sandbox


@pytest.fixture
def pg_schemas():
    with postgres_schemas("kore_fam") as names:
        yield names


def busy_day(sb: Sandbox, bot_id: str, at_least: int) -> str:
    """A day on which the app had at least `at_least` conversations."""
    per_day = Counter(
        s["start"].date().isoformat()
        for s in sb.expected(bot_id)
        if s["billingSessionType"] == "Conversations"
    )
    return sorted(day for day, n in per_day.items() if n >= at_least)[1]


def environment(sb: Sandbox, parent: str, start: str, schemas: tuple[str, str]) -> dict:
    return {
        "TAP_KORE_BILLING_API_URL": sb.url,
        "TAP_KORE_BILLING_CLIENT_ID": sb.client_id,
        "TAP_KORE_BILLING_CLIENT_SECRET": sb.client_secret,
        "TAP_KORE_BILLING_API_SCOPE": "bot",
        "TAP_KORE_BILLING_BOT_IDS": json.dumps([parent]),
        "TAP_KORE_BILLING_INCLUDE_LINKED_APPS": "true",
        "TAP_KORE_BILLING_START_DATE": start,
        "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
        "TAP_KORE_BILLING_SUMMARY_POLL_SECONDS": "0.05",
        **postgres_pipeline_env(*schemas),
    }


def test_a_parent_and_its_linked_apps_reconcile_as_one_family(tmp_path, pg_schemas):
    load_schema, models_schema = pg_schemas
    # A month of sessions, about eight a day per app (sessions is a rate per 120 days).
    month_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=30)
    with Sandbox(
        seed=44,
        apps=4,
        sessions=4000,
        start=month_ago,
        links="1:2,1:3,1:4",
        unreadable_apps="4",
        summary_polls=1,
    ) as sb:
        SECRETS_SEEN.add(sb.client_secret)
        front, claims, billing, locked = (app["botId"] for app in sb.apps())
        start = min(s["start"] for s in sb.expected()).date().isoformat()
        routed_day = busy_day(sb, front, at_least=3)
        lone_day = busy_day(sb, billing, at_least=1)
        # The summary bills three of Front Desk's conversations to Claims Bot (routing), and
        # one alert too many to Billing Help.
        injected = [
            {"botId": claims, "day": routed_day, "unit": "conversations", "delta": 3},
            {"botId": front, "day": routed_day, "unit": "conversations", "delta": -3},
            {"botId": billing, "day": lone_day, "unit": "alert_notifications", "delta": 1},
        ]
        sb.configure(summary_discrepancies=injected)
        run_meltano(["install", "tap-kore-billing", "target-postgres", "dbt-postgres"], tmp_path)
        done = run_meltano(
            ["run", "tap-kore-billing", "target-postgres", "dbt-postgres:build"],
            tmp_path,
            env=environment(sb, front, start, pg_schemas),
        )
        readable_sessions = sum(len(sb.expected(bot)) for bot in (front, claims, billing))

    assert locked in done.stderr  # the warning names the app it could not read
    with psycopg.connect(**PG) as conn:
        apps = dict(
            conn.execute(
                f'select "botId", "billingReadable" from {load_schema}.apps'  # noqa: S608
            ).fetchall()
        )
        names = dict(
            conn.execute(
                f"select bot_id, app_name from {models_schema}.stg_kore_billing__apps"  # noqa: S608
            ).fetchall()
        )
        links = conn.execute(
            f'select "linkedBotId" from {load_schema}.app_links '  # noqa: S608
            "where \"parentBotId\" = %s and state = 'published'",
            (front,),
        ).fetchall()
        per_app = conn.execute(
            "select bot_id, app_name, period_start::date::text, unit, detail_count, "  # noqa: S608
            f"difference, status from {models_schema}.kore_billing__reconciliation"
        ).fetchall()
        families = conn.execute(
            "select family_bot_id, period_start::date::text, unit, difference, status, "  # noqa: S608
            f"complete from {models_schema}.kore_billing__family_reconciliation"
        ).fetchall()

    assert apps == {front: True, claims: True, billing: True, locked: False}
    assert names[claims] == "Claims Bot"
    assert names[billing] == "Billing Help"
    assert {row[0] for row in links} == {claims, billing, locked}
    assert sum(row[4] for row in per_app) == readable_sessions
    assert {r[1] for r in per_app if r[0] == claims} == {"Claims Bot"}
    assert {(r[0], r[2], r[3]): r[5] for r in per_app if r[6] == "mismatch"} == {
        (claims, routed_day, "conversations"): -3,
        (front, routed_day, "conversations"): 3,
        (billing, lone_day, "alert_notifications"): -1,
    }
    # The whole family is Front Desk's, and it lacks the app these credentials cannot read.
    assert {row[0] for row in families} == {front}
    assert {row[5] for row in families} == {False}
    by_key = {(row[1], row[2]): row for row in families}
    assert by_key[(routed_day, "conversations")][3:5] == (0, "match")
    assert by_key[(lone_day, "alert_notifications")][3:5] == (-1, "mismatch")
    assert {k for k, row in by_key.items() if row[4] == "mismatch"} == {
        (lone_day, "alert_notifications")
    }

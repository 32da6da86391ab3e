"""The billing audit end to end, as a user runs it: the emulator's account, then
`meltano run tap-kore-billing target-duckdb dbt-duckdb:build` and
`meltano run tap-kore-billing target-postgres dbt-postgres:build`, one run per warehouse.

One account serves every claim: several apps over two months with links, billed by the rule,
plus audit cases planted on apps and days drawn from a seed (a new one each run, printed in
every assertion message; KORE_AUDIT_SEED=<seed> replays it). The audit must find exactly the
planted cases, and nothing at all in the rest of the account; the reconciliation must still
match, because the usage summary bills the planted sessions like any other.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from audit_build import (
    AUDIT_DAILY,
    CONVERSATION_AUDIT,
    SESSION_AUDIT,
    read_duckdb,
    read_postgres,
)
from helpers import (
    SECRETS_SEEN,
    draw_seed,
    postgres_pipeline_env,
    postgres_schemas,
    run_meltano,
    tap_env,
)

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
SEED = draw_seed()
WHY = f"KORE_AUDIT_SEED={SEED}"
APPS = 4
DAYS = 60
SESSION_FINDINGS = (
    "longer_than_15_minutes",
    "overlaps_another_session",
    "outside_its_conversation",
)
OVER_COUNTED = "over_counted"
DAILY_COUNTS = (
    "flagged_sessions",
    *SESSION_FINDINGS,
    "over_counted_conversations",
    "excess_sessions",
)
RECONCILIATION = "kore_billing__reconciliation"
FAMILY_RECONCILIATION = "kore_billing__family_reconciliation"
READ = (SESSION_AUDIT, CONVERSATION_AUDIT, AUDIT_DAILY, RECONCILIATION, FAMILY_RECONCILIATION)


def drawn_cases(first: date, last: date) -> list[str]:
    """Two cases of each finding, on apps and days in [first, last] drawn from SEED."""
    rng = random.Random(SEED)  # noqa: S311 - test data, replayed from the printed seed
    days = (last - first).days + 1
    findings = (*SESSION_FINDINGS, OVER_COUNTED)
    return [
        f"{finding}:{rng.randint(1, APPS)}:{first + timedelta(days=rng.randrange(days))}"
        for finding in findings
        for _ in range(2)
    ]


@pytest.fixture(scope="module")
def account() -> Any:
    """The emulator's account: default data knobs over two months, four apps, app 1 routing to
    apps 2 and 3, and the drawn cases (on whole days inside the data's range)."""
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first -= timedelta(days=DAYS)
    # The data ends an hour before now: the last whole day is the one before that.
    last = (datetime.now(UTC) - timedelta(hours=1)).date() - timedelta(days=1)
    cases = drawn_cases(first.date(), last)
    print(f"{WHY}: audit cases {','.join(cases)}")
    with Sandbox(
        seed=SEED, apps=APPS, start=first, links="1:2,1:3", audit_cases=cases, summary_polls=1
    ) as sb:
        SECRETS_SEEN.add(sb.client_secret)
        yield sb


def pipeline(sb: Sandbox, workdir: Path, warehouse: str, env: dict[str, str]) -> None:
    """One `meltano run` from the emulator into `warehouse`, dbt's build included."""
    plugins = ["tap-kore-billing", f"target-{warehouse}", f"dbt-{warehouse}"]
    run_meltano(["install", *plugins], workdir)
    run_meltano(["run", *plugins[:2], f"{plugins[2]}:build"], workdir, env={**tap_env(sb), **env})


@pytest.fixture(scope="module")
def duckdb_models(account: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("audit-duckdb")
    database = workdir / "kore_billing.duckdb"
    pipeline(account, workdir, "duckdb", {"TARGET_DUCKDB_FILEPATH": str(database)})
    return {model: read_duckdb(database, model) for model in READ}


@pytest.fixture(scope="module")
def postgres_models(account: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with postgres_schemas("kore_audit_run") as (load_schema, models_schema):
        workdir = tmp_path_factory.mktemp("audit-postgres")
        pipeline(account, workdir, "postgres", postgres_pipeline_env(load_schema, models_schema))
        yield {model: read_postgres(models_schema, model) for model in READ}


@pytest.fixture(params=["duckdb", "postgres"])
def models(request: pytest.FixtureRequest) -> dict[str, list[dict]]:
    """The audit and reconciliation models a warehouse built, by model name."""
    return request.getfixturevalue(f"{request.param}_models")


def flagged_sessions(rows: list[dict]) -> set[tuple]:
    """(finding, app, day, billing session, the other one) of each session audit row."""
    found = [
        (
            r["finding"],
            r["bot_id"],
            r["billing_day"].isoformat(),
            r["billing_session_id"],
            r["other_billing_session_id"],
        )
        for r in rows
    ]
    assert len(set(found)) == len(found), f"a finding listed twice ({WHY})"
    return set(found)


def planted_sessions(cases: list[dict]) -> set[tuple]:
    return {
        (c["finding"], c["botId"], c["day"], flagged, c["otherBillingSessionId"])
        for c in cases
        if c["finding"] != OVER_COUNTED
        for flagged in c["billingSessionIds"]
    }


def planted_daily(cases: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    """The counts audit_daily must show on each app and day that has cases."""
    days: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for case in cases:
        counts = days[case["botId"], case["day"]]
        if case["finding"] == OVER_COUNTED:
            counts["over_counted_conversations"] += 1
            counts["excess_sessions"] += case["excessSessions"]
        else:
            counts[case["finding"]] += len(case["billingSessionIds"])
            counts["flagged_sessions"] += len(case["billingSessionIds"])
    return {key: dict(counts) for key, counts in days.items()}


def nonzero_days(rows: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    return {
        (r["bot_id"], r["billing_day"].isoformat()): {n: r[n] for n in DAILY_COUNTS if r[n]}
        for r in rows
        if any(r[n] for n in DAILY_COUNTS)
    }


def test_realistic_data_has_no_finding_outside_the_planted_rows(account, models):
    cases = account.planted_audit_cases()
    planted_ids = {i for c in cases for i in c["addedBillingSessionIds"]}
    loaded = account.expected()
    # Every session and conversation of the account reached the audit.
    sessions = Counter((s["botId"], s["start"].date().isoformat()) for s in loaded)
    daily = models[AUDIT_DAILY]
    by_day = {(r["bot_id"], r["billing_day"].isoformat()): r["sessions"] for r in daily}
    assert by_day == sessions, WHY
    conversations = {
        (s["botId"], s["raw"]["conversationSessionId"])
        for s in loaded
        if s["raw"].get("conversationSessionId")
    }
    rows = models[CONVERSATION_AUDIT]
    assert {(r["bot_id"], r["conversation_session_id"]) for r in rows} == conversations, WHY
    # Apart from the planted rows: not one session flagged, not one conversation over-counted,
    # not one app and day with a count.
    stray = [r for r in models[SESSION_AUDIT] if r["billing_session_id"] not in planted_ids]
    assert stray == [], WHY
    planted_conversations = {(c["botId"], c["conversationSessionId"]) for c in cases}
    over = [
        r
        for r in rows
        if r["status"] != "ok"
        and (r["bot_id"], r["conversation_session_id"]) not in planted_conversations
    ]
    assert over == [], WHY
    planted_days = {(c["botId"], c["day"]) for c in cases}
    assert {k: v for k, v in nonzero_days(daily).items() if k not in planted_days} == {}, WHY
    assert len(sessions) > APPS * DAYS // 2, "a couple of months of several apps"


def test_the_audit_finds_exactly_the_planted_cases(account, models):
    cases = account.planted_audit_cases()
    assert {c["finding"] for c in cases} == {*SESSION_FINDINGS, OVER_COUNTED}, WHY
    assert flagged_sessions(models[SESSION_AUDIT]) == planted_sessions(cases), WHY
    over_counted = {
        (r["bot_id"], r["conversation_session_id"]): (
            r["billing_day"].isoformat(),
            r["billing_sessions"],
            r["excess_sessions"],
        )
        for r in models[CONVERSATION_AUDIT]
        if r["status"] == "over_counted"
    }
    assert over_counted == {
        (c["botId"], c["conversationSessionId"]): (
            c["day"],
            len(c["addedBillingSessionIds"]),
            c["excessSessions"],
        )
        for c in cases
        if c["finding"] == OVER_COUNTED
    }, WHY
    assert nonzero_days(models[AUDIT_DAILY]) == planted_daily(cases), WHY
    # Bot scope learns names from the links only: the linked apps' rows carry theirs.
    names = {app["botId"]: app["name"] for app in account.apps()}
    linked = {link["linkedBotId"] for link in account.links()}
    for row in models[SESSION_AUDIT]:
        bot = row["bot_id"]
        assert row["app_name"] == (names[bot] if bot in linked else None), WHY


def test_the_reconciliation_matches_with_the_planted_sessions_billed(account, models):
    today = datetime.now(UTC).date()
    for model in (RECONCILIATION, FAMILY_RECONCILIATION):
        rows = models[model]
        assert rows, model
        mismatched = [r for r in rows if r["status"] == "mismatch"]
        assert mismatched == [], f"{model} ({WHY})"
        assert {r["period_start"].date() for r in rows if r["status"] == "open"} <= {today}
    # The usage summary bills the planted sessions on their days, like any other conversation.
    summarized = {
        (r["bot_id"], r["period_start"].date().isoformat()): r["summary_count"]
        for r in models[RECONCILIATION]
        if r["unit"] == "conversations" and r["granularity"] == "day"
    }
    billed = Counter(
        (s["botId"], s["start"].date().isoformat())
        for s in account.expected()
        if s["billingSessionType"] == "Conversations"
    )
    for case in account.planted_audit_cases():
        key = (case["botId"], case["day"])
        assert summarized[key] == billed[key] >= len(case["addedBillingSessionIds"]), WHY

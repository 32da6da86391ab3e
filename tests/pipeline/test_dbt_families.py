"""Routing families in the dbt project: kore_billing__family_reconciliation and app_name.

Hand-made rows of all four streams in target-duckdb's shape (lower-case column names, naive
UTC timestamps) go into a DuckDB file and `meltano invoke dbt-duckdb:build` builds the project
into it, as in test_dbt.py. The accounts here: a Parent that routes conversations to a linked
app (the per-app check shows +3 and -3), a second Parent linked to the same app, an app without
links, and a Parent whose linked app the credentials could not read.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from helpers import APP_COLUMNS, SESSION_COLUMNS, SUMMARY_COLUMNS, run_meltano

MODELS = "analytics"
# The tables target-duckdb writes for the four streams (the tap's names lower-cased).
COLUMNS = {
    "billing_sessions": SESSION_COLUMNS,
    "billing_usage_summary": SUMMARY_COLUMNS,
    "apps": APP_COLUMNS,
    "app_links": {
        "parentbotid": "VARCHAR",
        "linkedbotid": "VARCHAR",
        "state": "VARCHAR",
        "name": "VARCHAR",
        "apptype": "VARCHAR",
        "type": "VARCHAR",
        "status": "INTEGER",
        "defaultlanguage": "VARCHAR",
        "configuredversion": "INTEGER",
        "publishedversion": "INTEGER",
    },
}
UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")

PARENT = "st-10000000-0000-0000-0000-000000000001"
OTHER_PARENT = "st-20000000-0000-0000-0000-000000000002"  # also links LINKED; larger ID
LINKED = "st-30000000-0000-0000-0000-000000000003"
SOLO = "st-40000000-0000-0000-0000-000000000004"
BLIND_PARENT = "st-50000000-0000-0000-0000-000000000005"
UNREADABLE = "st-60000000-0000-0000-0000-000000000006"
QUIET_PARENT = "st-70000000-0000-0000-0000-000000000007"
NOT_TRIED = "st-80000000-0000-0000-0000-000000000008"  # linked, never read (null)
NAMES = {
    PARENT: "Concierge",
    OTHER_PARENT: "Front desk",
    LINKED: "Bookings",
    SOLO: "Support",
    BLIND_PARENT: "Sales",
    UNREADABLE: "Quotes",
    QUIET_PARENT: "Lobby",
    NOT_TRIED: "Archive",
}
DAY = datetime(2025, 3, 1)


def session(bot: str, start: datetime) -> dict:
    return {
        "billingsessionid": uuid.uuid4().hex[:24],
        "botid": bot,
        "channel": "rtm",
        "billingsessiontype": "Conversations",
        "billingsessionstartdatetime": start,
        "billingsessionenddatetime": start + timedelta(minutes=10),
    }


def summary(bot: str, conversations: int) -> dict:
    return {
        "botid": bot,
        "granularity": "day",
        "periodstart": DAY,
        "requests": 5,
        **dict.fromkeys(UNITS, 0),
        "conversations": conversations,
    }


def app(bot: str, source: str, readable: bool | None, links: tuple[str, ...] = ()) -> dict:
    return {
        "botid": bot,
        "name": NAMES[bot],
        "status": "published",
        "type": "universalbot" if links else "default",
        "defaultlanguage": "en",
        "createdon": datetime(2024, 6, 1),
        "islinkedto": json.dumps(list(links)),
        "source": source,
        "billingreadable": readable,
    }


def link(parent: str, linked: str, state: str) -> dict:
    return {
        "parentbotid": parent,
        "linkedbotid": linked,
        "state": state,
        "name": NAMES[linked],
        "apptype": "default",
        "status": 1,
        "configuredversion": 2,
        "publishedversion": 1 if state == "published" else None,
    }


def routed_account() -> dict[str, list[dict]]:
    """Detail and summary per app for 1 March, by conversations:

    PARENT 1 in the details, 4 in the summary (-3); LINKED 5 and 2 (+3): three sessions PARENT
    routed to LINKED. OTHER_PARENT 1 and 1. SOLO 2 and 2, and only a configured (unpublished)
    link from PARENT. BLIND_PARENT 1 and 1, its linked app UNREADABLE has no rows at all;
    QUIET_PARENT 1 and 1, its linked app NOT_TRIED was never read (include_linked_apps off).
    """
    detail = {PARENT: 1, LINKED: 5, OTHER_PARENT: 1, SOLO: 2, BLIND_PARENT: 1, QUIET_PARENT: 1}
    billed = {PARENT: 4, LINKED: 2, OTHER_PARENT: 1, SOLO: 2, BLIND_PARENT: 1, QUIET_PARENT: 1}
    sessions = [
        session(bot, DAY.replace(hour=8 + n)) for bot, count in detail.items() for n in range(count)
    ]
    summaries = [summary(bot, count) for bot, count in billed.items()]
    summaries.append(summary("ALL", sum(billed.values())))
    return {
        "billing_sessions": sessions,
        "billing_usage_summary": summaries,
        "apps": [
            app(PARENT, "get_bots", True, (LINKED, SOLO)),
            app(OTHER_PARENT, "get_bots", True, (LINKED,)),
            app(LINKED, "linked_apps", True),
            app(SOLO, "bot_ids", True),
            app(BLIND_PARENT, "get_bots", True, (UNREADABLE,)),
            app(UNREADABLE, "linked_apps", False),
            app(QUIET_PARENT, "bot_ids", True, (NOT_TRIED,)),
            app(NOT_TRIED, "linked_apps", None),
        ],
        "app_links": [
            link(PARENT, LINKED, "published"),
            link(PARENT, LINKED, "configured"),
            link(OTHER_PARENT, LINKED, "published"),
            link(PARENT, SOLO, "configured"),
            link(BLIND_PARENT, UNREADABLE, "published"),
            link(QUIET_PARENT, NOT_TRIED, "published"),
        ],
    }


def write_database(path: Path, tables: dict[str, list[dict]]) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute("create schema kore_billing")
        for table, rows in tables.items():
            columns = COLUMNS[table]
            db.execute(
                f"create table kore_billing.{table} "
                f"({', '.join(f'{name} {kind}' for name, kind in columns.items())})"
            )
            db.executemany(
                f"insert into kore_billing.{table} values ({', '.join('?' for _ in columns)})",  # noqa: S608
                [[row.get(name) for name in columns] for row in rows],
            )


def read(path: Path, model: str, key: tuple[str, ...]) -> dict[tuple, dict]:
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"select * from {path.stem}.{MODELS}.{model}")  # noqa: S608
        names = [d[0] for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    keyed = {tuple(row[k] for k in key): row for row in rows}
    assert len(keyed) == len(rows), f"{model}: one row per {key}"
    return keyed


FAMILY_KEY = ("family_bot_id", "granularity", "period_start", "unit")
APP_KEY = ("bot_id", "granularity", "period_start", "unit")


def build(workdir: Path, tables: dict[str, list[dict]]) -> tuple[str, dict, dict, dict]:
    """dbt build over `tables`: output, run results, per-app rows, family rows."""
    database = workdir / "families.duckdb"
    write_database(database, tables)
    done = run_meltano(
        ["invoke", "dbt-duckdb:build"], workdir, env={"DBT_DUCKDB_PATH": str(database)}
    )
    results = json.loads((workdir / "dbt-target" / "run_results.json").read_text())["results"]
    return (
        done.stdout + done.stderr,
        {r["unique_id"]: r for r in results},
        read(database, "kore_billing__reconciliation", APP_KEY),
        read(database, "kore_billing__family_reconciliation", FAMILY_KEY),
    )


@pytest.fixture(scope="module")
def dbt_duckdb_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb"], tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def built(dbt_duckdb_installed, tmp_path_factory):
    return build(tmp_path_factory.mktemp("families"), routed_account())


def test_routed_sessions_mismatch_per_app_but_match_per_family(built):
    _, _, apps, families = built
    per_app = {
        bot: (
            apps[bot, "day", DAY, "conversations"]["difference"],
            apps[bot, "day", DAY, "conversations"]["status"],
        )
        for bot in (PARENT, LINKED)
    }
    assert per_app == {PARENT: (-3, "mismatch"), LINKED: (3, "mismatch")}
    family = families[PARENT, "day", DAY, "conversations"]
    assert family["family_name"] == "Concierge"
    assert (family["apps"], family["detail_count"], family["summary_count"]) == (2, 6, 6)
    assert (family["difference"], family["status"], family["complete"]) == (0, "match", True)
    assert family["period_end"] == DAY + timedelta(days=1)


def test_every_family_matches_and_the_all_group_is_left_out(built):
    _, _, _, families = built
    assert {row["status"] for row in families.values()} == {"match"}
    # LINKED is published-linked from two Parents: it joins the smaller ID's family only.
    conversations = {
        bot: (row["apps"], row["detail_count"])
        for (bot, _, _, unit), row in families.items()
        if unit == "conversations"
    }
    assert conversations == {
        PARENT: (2, 6),
        OTHER_PARENT: (1, 1),
        SOLO: (1, 2),
        BLIND_PARENT: (1, 1),
        QUIET_PARENT: (1, 1),
    }
    assert {bot for bot, *_ in families} == set(conversations)
    assert {unit for *_, unit in families} == set(UNITS)


def test_an_app_without_published_links_is_its_own_family(built):
    _, _, apps, families = built
    solo = families[SOLO, "day", DAY, "conversations"]
    row = apps[SOLO, "day", DAY, "conversations"]
    assert (solo["family_name"], solo["apps"]) == ("Support", 1)
    assert (solo["detail_count"], solo["summary_count"], solo["status"]) == (
        row["detail_count"],
        row["summary_count"],
        row["status"],
    )


def test_a_family_with_a_member_not_read_is_incomplete(built):
    _, _, _, families = built
    complete = {bot: row["complete"] for (bot, *_), row in families.items()}
    assert complete == {
        PARENT: True,
        OTHER_PARENT: True,
        SOLO: True,
        BLIND_PARENT: False,  # its linked app was refused
        QUIET_PARENT: False,  # its linked app was never tried
    }


def test_the_per_app_reconciliation_names_the_apps(built):
    _, _, apps, _ = built
    names = {bot: row["app_name"] for (bot, *_), row in apps.items()}
    assert names == {
        **{
            bot: NAMES[bot]
            for bot in (PARENT, OTHER_PARENT, LINKED, SOLO, BLIND_PARENT, QUIET_PARENT)
        },
        "ALL": None,
    }


def test_every_dbt_test_passes(built):
    _, results, _, _ = built
    tests = {name: r["status"] for name, r in results.items() if name.startswith("test.")}
    assert any("family_reconciliation" in name for name in tests)
    assert any("stg_kore_billing__app_links" in name for name in tests)
    assert {name: status for name, status in tests.items() if status != "pass"} == {}


def test_without_the_app_streams_each_app_is_its_own_family(dbt_duckdb_installed, tmp_path):
    """A project loaded before the apps and app_links streams existed still builds: warnings,
    no names, and the family rows are the per-app rows."""
    tables = routed_account()
    del tables["apps"], tables["app_links"]
    output, results, apps, families = build(tmp_path, tables)
    for table in ("apps", "app_links"):
        assert f'"kore_billing"."{table}" does not exist (yet)' in output
    assert {r["status"] for r in results.values()} <= {"pass", "success"}
    assert {row["app_name"] for row in apps.values()} == {None}
    per_app = {
        key: (r["detail_count"], r["summary_count"], r["status"])
        for key, r in apps.items()
        if key[0] != "ALL"
    }
    assert {
        key: (r["detail_count"], r["summary_count"], r["status"]) for key, r in families.items()
    } == per_app
    assert {row["apps"] for row in families.values()} == {1}
    assert {row["complete"] for row in families.values()} == {True}

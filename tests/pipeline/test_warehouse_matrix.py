"""Every stream, in both API scopes, into each warehouse the README documents.

`meltano run tap-kore-billing <loader>` for DuckDB (target-duckdb), PostgreSQL (target-postgres)
and Snowflake (target-snowflake in the snowflake-local environment, into fakesnow), once with
api_scope `bot` and two apps in bot_ids, once with api_scope `admin` and the whole account. Each
run's four tables must hold what the emulator says: the apps and their isLinkedTo (null, empty,
one Parent, two), the links, the sessions per app, and a summary row per app-day whose counters
add up to that app's sessions. The admin scope's empty isLinkedTo once broke the Snowflake load
while the bot scope loaded, so no warehouse is checked in one scope only.

One small account (four apps, three days) and one local Snowflake serve every row. PostgreSQL
rows skip without a server on 127.0.0.1:5432 (fail under CI=true).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from helpers import PG, postgres_or_skip, postgres_pipeline_env, run_meltano, tap_env
from psycopg.rows import dict_row
from snowflake_helpers import LOCAL, local_settings, local_snowflake, query

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.summary_report import TYPE_COUNTERS

UTC = timezone.utc
STREAMS = ("apps", "app_links", "billing_sessions", "billing_usage_summary")
START = datetime(2024, 3, 1, tzinfo=UTC)
END = datetime(2024, 3, 4, tzinfo=UTC)
DAYS = 3  # 1 to 3 March: the summary has a row per app and day, zero days included
# Apps by position. Published links 1:2, 1:3 and 2:3; 3:4 is a draft (configured only).
LINKS, DRAFT_LINKS = "1:2,1:3,2:3", "3:4"
BOT_IDS = (1, 3)  # the bot scope's bot_ids; include_linked_apps (on) adds 2, linked from 1
# Per scope: app -> (source, isLinkedTo, billingReadable). Admin: Get Bots' isLinkedTo, the
# Parents that publish a link to the app, [] for none. Bot: the configured Parents publishing a
# link to it (app 2's other Parent is not configured), null for none; app 4 is known only from
# 3's draft link, so no billing stream reads it.
APPS: dict[str, dict[int, tuple[str, list[int] | None, bool | None]]] = {
    "admin": {
        1: ("get_bots", [], True),
        2: ("get_bots", [1], True),
        3: ("get_bots", [1, 2], True),
        4: ("get_bots", [], True),
    },
    "bot": {
        1: ("bot_ids", None, True),
        2: ("linked_apps", [1], True),
        3: ("bot_ids", [1], True),
        4: ("linked_apps", None, None),
    },
}
PARENTS = {"admin": (1, 2, 3, 4), "bot": BOT_IDS}  # whose links the app_links stream holds
LOADERS = {
    "duckdb": "target-duckdb",
    "postgres": "target-postgres",
    "snowflake": "target-snowflake",
}
CASES = [(warehouse, scope) for warehouse in LOADERS for scope in ("bot", "admin")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    plugins = ["tap-kore-billing", *LOADERS.values(), "fakesnow"]
    run_meltano(["install", *plugins], tmp_path_factory.mktemp("matrix-install"))


@pytest.fixture(scope="module")
def account() -> Iterator[Sandbox]:
    with Sandbox(
        seed=61,
        apps=4,
        sessions=60,
        start=START,
        end=END,
        links=LINKS,
        draft_links=DRAFT_LINKS,
        summary_polls=1,
    ) as sb:
        yield sb


@pytest.fixture(scope="module")
def snowflake(installed, tmp_path_factory) -> Iterator[dict[str, str]]:
    """One local Snowflake for the Snowflake rows, each scope in a schema of its own."""
    folder = tmp_path_factory.mktemp("matrix-snowflake")
    settings = local_settings(folder)
    with local_snowflake(folder, settings):
        yield settings


@pytest.fixture
def pg_schema() -> Iterator[str]:
    postgres_or_skip()
    name = f"kore_matrix_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(**PG, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {name} cascade")


def position(sb: Sandbox) -> dict[str, int]:
    return {app["botId"]: app["index"] for app in sb.apps()}


def tap_settings(sb: Sandbox, scope: str) -> dict[str, str]:
    ids = [sb.bot_ids[n - 1] for n in BOT_IDS] if scope == "bot" else []
    return tap_env(
        sb,
        TAP_KORE_BILLING_API_SCOPE=scope,
        TAP_KORE_BILLING_BOT_IDS=json.dumps(ids),
        TAP_KORE_BILLING_START_DATE=START.date().isoformat(),
        TAP_KORE_BILLING_END_DATE="2024-03-03T23:59:59Z",
    )


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A loaded row with lower-case column names, without the loader's _sdc columns."""
    return {k.lower(): v for k, v in row.items() if not k.lower().startswith("_sdc_")}


def read_duckdb(path: Path, schema: str) -> dict[str, list[dict]]:
    """Every table's rows; a JSON column's text decoded (DuckDB's client returns it as text)."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = {}
        for stream in STREAMS:
            cursor = conn.execute(f"select * from {schema}.{stream}")  # noqa: S608
            columns = [(column[0], column[1] == "JSON") for column in cursor.description or []]
            tables[stream] = [
                plain(
                    {
                        name: json.loads(value) if is_json and value is not None else value
                        for (name, is_json), value in zip(columns, row, strict=True)
                    }
                )
                for row in cursor.fetchall()
            ]
    return tables


def read_postgres(schema: str) -> dict[str, list[dict]]:
    with psycopg.connect(**PG, row_factory=dict_row) as conn:
        return {
            stream: [
                plain(row)
                for row in conn.execute(f"select * from {schema}.{stream}").fetchall()  # noqa: S608
            ]
            for stream in STREAMS
        }


def read_snowflake(schema: str, workdir: Path, settings: dict[str, str]) -> dict[str, list[dict]]:
    """Every table's rows in one statement: each row as an object (Snowflake leaves out the
    null columns), so a VARIANT arrives as the JSON it holds."""
    sql = " union all ".join(
        f"select '{stream}' as stream, object_construct(*) as doc from {schema}.{stream}"  # noqa: S608
        for stream in STREAMS
    )
    tables: dict[str, list[dict]] = {stream: [] for stream in STREAMS}
    for row in query(sql, workdir, settings):
        tables[row["STREAM"]].append(plain(json.loads(row["DOC"])))
    return tables


def load(
    warehouse: str, scope: str, sb: Sandbox, workdir: Path, request: pytest.FixtureRequest
) -> dict[str, list[dict]]:
    """`meltano run tap-kore-billing <loader>` as a user configures it, then the four tables."""
    env = tap_settings(sb, scope)
    args = ["run", "tap-kore-billing", LOADERS[warehouse]]
    if warehouse == "duckdb":
        path = workdir / "kore_billing.duckdb"
        env |= {"TARGET_DUCKDB_FILEPATH": str(path), "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": scope}
        run_meltano(args, workdir, env=env)
        return read_duckdb(path, scope)
    if warehouse == "postgres":
        schema = request.getfixturevalue("pg_schema")
        run_meltano(args, workdir, env=env | postgres_pipeline_env(schema, f"{schema}_models"))
        return read_postgres(schema)
    settings = request.getfixturevalue("snowflake")
    schema = f"kore_{scope}"
    env |= {**settings, "TARGET_SNOWFLAKE_DEFAULT_TARGET_SCHEMA": schema}
    run_meltano([LOCAL, *args], workdir, env=env)
    return read_snowflake(schema, workdir, settings)


def linked_to(value: object, where: dict[str, int]) -> list[int] | None:
    """isLinkedTo as app positions: a JSON array or null, never text that looks like one."""
    assert value is None or isinstance(value, list), repr(value)
    return None if value is None else [where[bot] for bot in value]


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("warehouse", "scope"), CASES, ids=[f"{w}-{s}" for w, s in CASES])
def test_every_stream_loads_what_the_emulator_holds(account, warehouse, scope, tmp_path, request):
    sb = account
    tables = load(warehouse, scope, sb, tmp_path, request)
    where = position(sb)

    apps = {
        where[row["botid"]]: (
            row["source"],
            linked_to(row.get("islinkedto"), where),
            row.get("billingreadable"),
        )
        for row in tables["apps"]
    }
    assert len(tables["apps"]) == len(apps)
    assert apps == APPS[scope]

    parents = {sb.bot_ids[n - 1] for n in PARENTS[scope]}
    links = [(row["parentbotid"], row["linkedbotid"], row["state"]) for row in tables["app_links"]]
    assert sorted(links) == sorted(
        (link["parentBotId"], link["linkedBotId"], link["state"])
        for link in sb.links()
        if link["parentBotId"] in parents
    )

    # The apps the billing streams read: every app, or bot_ids and the apps they publish to.
    read = [bot for bot, (_, _, readable) in APPS[scope].items() if readable]
    sessions = {n: dict.fromkeys(TYPE_COUNTERS, 0) for n in read}
    for session in sb.expected():
        if where[session["botId"]] in sessions:
            sessions[where[session["botId"]]][session["billingSessionType"]] += 1
    loaded = Counter(where[row["botid"]] for row in tables["billing_sessions"])
    assert loaded == {n: sum(types.values()) for n, types in sessions.items()}
    ids = [row["billingsessionid"] for row in tables["billing_sessions"]]
    assert len(set(ids)) == len(ids)

    # A row per app and day; each counter adds up to the app's sessions of that type.
    summary = {n: {"days": 0, **dict.fromkeys(TYPE_COUNTERS, 0)} for n in read}
    for row in tables["billing_usage_summary"]:
        cell = summary[where[row["botid"]]]
        cell["days"] += 1
        for kind, counter in TYPE_COUNTERS.items():
            cell[kind] += int(row[counter])
    assert summary == {n: {"days": DAYS, **types} for n, types in sessions.items()}

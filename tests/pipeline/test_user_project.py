"""The user's situation: a Meltano project of their own, another tap beside ours, their own dbt.

Nothing here reads this repository's meltano.yml or transform/ as a project. The test lays out
what a user has: a fresh `meltano init` project, this checkout beside it (a symlink, as
`../tap-kore-billing`), tap-jsonl from PyPI over a small file, MeltanoLabs target-postgres
writing each tap to its own schema (`default_target_schema: $MELTANO_EXTRACT__LOAD_SCHEMA`), and
our extractor added from meltano/tap-kore-billing.yml as docs/own-projects.md says. `meltano run
tap-jsonl target-postgres tap-kore-billing target-postgres` runs twice; then a dbt project of the
user's installs transform/ as a package (`packages.yml`, `local:`) and builds its own models and
ours.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
import yaml
from helpers import CAPTURED_OUTPUT, MELTANO, PG, ROOT, postgres_or_skip, run_meltano, tap_env

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
# Hub is unreachable: the user's other plugins come from definition files too (pinned).
TAP_JSONL = {
    "name": "tap-jsonl",
    "namespace": "tap_jsonl",
    "pip_url": "tap-jsonl==0.3.1",
    "executable": "tap-jsonl",
    "capabilities": ["catalog", "discover", "state", "about", "stream-maps"],
    "settings": [
        {"name": "path", "kind": "string"},
        {"name": "stream_name", "kind": "string"},
        {"name": "primary_keys", "kind": "array"},
    ],
}
TARGET_POSTGRES = {
    "name": "target-postgres",
    "namespace": "target_postgres",
    "pip_url": "meltanolabs-target-postgres==0.8.1",
    "executable": "target-postgres",
    "settings": [
        {"name": name, "kind": "string"}
        for name in ("host", "user", "database", "default_target_schema", "load_method")
    ]
    + [
        {"name": "port", "kind": "integer"},
        {"name": "password", "kind": "string", "sensitive": True},
    ],
}
ORDERS = [{"id": 1, "customer": "ada", "total": 12.5}, {"id": 2, "customer": "bob", "total": 3}]
LATER_ORDER = {"id": 3, "customer": "cy", "total": 7.25}
# The tap's streams: each a table in its schema, a source of the package, a key of its state
# (the full-table inventory streams with an empty entry).
OURS = {"billing_sessions", "billing_usage_summary", "apps", "app_links"}
# The commands docs/own-projects.md gives for a user's projects, run here as written.
DOCS_ADD = (
    "meltano add --plugin-type extractor tap-kore-billing "
    "--from-ref ../tap-kore-billing/meltano/tap-kore-billing.yml"
)
DOCS_PACKAGE = "../tap-kore-billing/transform"
# Meltano's state IDs: <environment>:<extractor>-to-<loader>, one per extractor.
JSONL_STATE = "dev:tap-jsonl-to-target-postgres"
KORE_STATE = "dev:tap-kore-billing-to-target-postgres"


def meltano(args: list[str], project: Path, env: dict[str, str]) -> str:
    """`meltano ARGS` in the user's project (its own system database under .meltano/)."""
    # Not our project's Meltano variables: under pytest-xdist MELTANO_SYS_DIR_ROOT names a
    # worker's .meltano, whose plugins are our project's, which an install here would replace.
    own = {k: v for k, v in os.environ.items() if not k.startswith("MELTANO_")}
    done = subprocess.run(
        [MELTANO, *args],
        cwd=project,
        env={**own, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


def dbt(args: list[str], project: Path) -> str:
    """The user's dbt (dbt-postgres 1.11, from our sample project's utility venv)."""
    executable = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    done = subprocess.run(
        [str(executable), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


@pytest.fixture
def schemas():
    postgres_or_skip()
    suffix = uuid.uuid4().hex[:8]
    names = {
        "jsonl": f"tap_jsonl_{suffix}",
        "kore": f"kore_billing_{suffix}",
        "models": f"analytics_{suffix}",
    }
    yield names
    with psycopg.connect(**PG, autocommit=True) as conn:
        for name in (*names.values(), f"{names['models']}_dbt_test__audit"):
            conn.execute(f"drop schema if exists {name} cascade")


def user_meltano_project(tmp_path: Path, schemas: dict[str, str], orders: Path) -> Path:
    """`meltano init`, the three plugins added from files, configured with `meltano config`."""
    (tmp_path / "tap-kore-billing").symlink_to(ROOT, target_is_directory=True)
    meltano(["init", "warehouse", "--no_usage_stats"], tmp_path, {})
    project = tmp_path / "warehouse"
    others = tmp_path / "tap-jsonl.yml", tmp_path / "target-postgres.yml"
    others[0].write_text(yaml.safe_dump(TAP_JSONL))
    others[1].write_text(yaml.safe_dump(TARGET_POSTGRES))
    for kind, name, definition in (
        ("extractor", "tap-jsonl", str(others[0])),
        ("loader", "target-postgres", str(others[1])),
    ):
        add = ["add", "--plugin-type", kind, name, "--from-ref", definition, "--no-install"]
        meltano(add, project, {})
    # Ours as docs/own-projects.md says, relative to the project as a user types it.
    assert DOCS_ADD in (ROOT / "docs" / "own-projects.md").read_text()
    meltano([*shlex.split(DOCS_ADD)[1:], "--no-install"], project, {})
    for plugin, name, value in (
        ("target-postgres", "default_target_schema", "$MELTANO_EXTRACT__LOAD_SCHEMA"),
        ("target-postgres", "load_method", "upsert"),
        ("tap-jsonl", "path", str(orders)),
        ("tap-jsonl", "stream_name", "orders"),
        ("tap-jsonl", "primary_keys", '["id"]'),
        # Unique schemas for the test; a user keeps the defaults (tap_jsonl, kore_billing).
        ("tap-jsonl", "_load_schema", schemas["jsonl"]),
        ("tap-kore-billing", "_load_schema", schemas["kore"]),
    ):
        meltano(["config", "set", plugin, name, value], project, {})
    meltano(["install"], project, {})
    return project


def user_dbt_project(tmp_path: Path, schemas: dict[str, str]) -> Path:
    """The user's own models beside ours; one is named as our mart was before the prefix."""
    project = tmp_path / "analytics"
    assert f"- local: {DOCS_PACKAGE}" in (ROOT / "docs" / "own-projects.md").read_text()
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "acme_analytics",
                "version": "1.0.0",
                "config-version": 2,
                "profile": "acme",
                "flags": {"send_anonymous_usage_stats": False},
                "vars": {"kore_billing_schema": schemas["kore"], "shop_schema": schemas["jsonl"]},
            }
        )
    )
    (project / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": DOCS_PACKAGE}]}))
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                "acme": {
                    "target": "dev",
                    "outputs": {
                        "dev": {
                            "type": "postgres",
                            "host": PG["host"],
                            "port": PG["port"],
                            "user": PG["user"],
                            "password": "unused-with-trust-auth",
                            "dbname": PG["dbname"],
                            "schema": schemas["models"],
                            "threads": 2,
                        }
                    },
                }
            }
        )
    )
    (project / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: shop\n    schema: \"{{ var('shop_schema') }}\"\n"
        "    tables:\n      - name: orders\n"
    )
    (project / "models" / "orders.sql").write_text(
        "select id, customer, total from {{ source('shop', 'orders') }}\n"
    )
    (project / "models" / "billing_reconciliation.sql").write_text(
        "select count(*) as orders from {{ ref('orders') }}\n"
    )
    return project


def tables(schema: str) -> set[str]:
    with psycopg.connect(**PG) as conn:
        rows = conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (schema,)
        ).fetchall()
    return {row[0] for row in rows}


def test_two_taps_in_the_users_project_then_the_users_dbt_with_our_package(tmp_path, schemas):
    run_meltano(["install", "dbt-postgres"], tmp_path)  # the dbt the user's project runs
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(order) + "\n" for order in ORDERS))
    project = user_meltano_project(tmp_path, schemas, orders)
    with Sandbox(seed=61, apps=2, sessions=300, max_page_size=100) as sb:
        days = sorted({s["start"].date() for s in sb.expected()})
        injected = {(sb.bot_ids[1], days[5], "conversations"): 3}
        sb.configure(
            summary_discrepancies=[
                {"botId": bot, "day": day.isoformat(), "unit": unit, "delta": delta}
                for (bot, day, unit), delta in injected.items()
            ],
            summary_polls=1,
        )
        env = {
            **tap_env(sb, TAP_KORE_BILLING_START_DATE=days[0].isoformat()),
            "TARGET_POSTGRES_HOST": PG["host"],
            "TARGET_POSTGRES_PORT": str(PG["port"]),
            "TARGET_POSTGRES_USER": PG["user"],
            "TARGET_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "TARGET_POSTGRES_DATABASE": PG["dbname"],
        }
        pipeline = ["run", "tap-jsonl", "target-postgres", "tap-kore-billing", "target-postgres"]
        meltano(pipeline, project, env)
        first_rows = sb.stats()["rows_served"]
        sb.reset_stats()
        with orders.open("a") as file:  # the other tap's source grows between the runs
            file.write(json.dumps(LATER_ORDER) + "\n")
        meltano(pipeline, project, env)
        second_rows = sb.stats()["rows_served"]
        sessions = len(sb.expected())
    state_ids = meltano(["state", "list"], project, {}).split()
    states = {name: json.loads(meltano(["state", "get", name], project, {})) for name in state_ids}

    dbt_project = user_dbt_project(tmp_path, schemas)
    dbt(["deps"], dbt_project)
    dbt(["build"], dbt_project)
    # With the var unset, the package reads the schema the extractor's namespace gives.
    ls_sources = ["ls", "--resource-type", "source", "--output", "json"]
    keys = ["--output-keys", "source_name name schema", "--vars", '{"kore_billing_schema": ""}']
    listed = dbt([*ls_sources, *keys], dbt_project)
    sources = [json.loads(line) for line in listed.splitlines() if line.startswith("{")]

    # Each tap in its own schema, and nothing of one in the other's.
    assert tables(schemas["jsonl"]) == {"orders"}
    assert tables(schemas["kore"]) == OURS
    with psycopg.connect(**PG) as conn:
        loaded_orders = conn.execute(
            f"select id, customer from {schemas['jsonl']}.orders order by id"  # noqa: S608
        ).fetchall()
        loaded = conn.execute(
            'select count(*), count(distinct "billingSessionId") '  # noqa: S608
            f"from {schemas['kore']}.billing_sessions"
        ).fetchone()
        summary_rows = conn.execute(
            f"select count(*) from {schemas['kore']}.billing_usage_summary"  # noqa: S608
        ).fetchone()
        reconciliation = conn.execute(
            "select bot_id, period_start, unit, difference, status "  # noqa: S608
            f"from {schemas['models']}.kore_billing__reconciliation"
        ).fetchall()
        users_model = conn.execute(
            f"select orders from {schemas['models']}.billing_reconciliation"  # noqa: S608
        ).fetchone()
    assert loaded_orders == [(1, "ada"), (2, "bob"), (3, "cy")]
    assert loaded == (sessions, sessions), "every session once after two runs"
    assert summary_rows is not None
    assert summary_rows[0] > 0
    assert users_model == (3,), "the user's model of the old name builds beside ours"
    models = tables(schemas["models"])
    assert {"stg_kore_billing__billing_sessions", "kore_billing__reconciliation"} <= models
    assert {"orders", "billing_reconciliation", "kore_billing__session_types"} <= models

    # State per extractor: one ID each, each with its own streams' bookmarks.
    assert sorted(states) == [JSONL_STATE, KORE_STATE]
    assert set(states[JSONL_STATE]["singer_state"]["bookmarks"]) == {"orders"}
    kore_state = states[KORE_STATE]["singer_state"]["bookmarks"]
    assert set(kore_state) == OURS
    partitions = kore_state["billing_sessions"]["partitions"]
    assert sorted(p["context"]["botId"] for p in partitions) == sorted(sb.bot_ids)
    assert second_rows < first_rows, "the second run starts from the state of the first"

    # The reconciliation: exactly the injected app-day, every session counted.
    found = {
        (bot, period.date(), unit): difference
        for bot, period, unit, difference, status in reconciliation
        if status == "mismatch"
    }
    assert found == {key: -delta for key, delta in injected.items()}
    assert len(reconciliation) == 4 * 2 * ((datetime.now(UTC).date() - days[0]).days + 1)

    # The package's default schema is the extractor's load_schema default, its namespace.
    kore_sources = {s["name"]: s["schema"] for s in sources if s["source_name"] == "kore_billing"}
    assert kore_sources == dict.fromkeys(OURS, "kore_billing")
    print(
        f"user's project: {schemas['jsonl']}.orders {len(loaded_orders)} rows; "
        f"{schemas['kore']}.billing_sessions {sessions} rows, billing_usage_summary "
        f"{summary_rows[0]} rows; state IDs {sorted(states)}; rows served {first_rows} then "
        f"{second_rows}; {len(reconciliation)} reconciliation rows, mismatches {found}"
    )

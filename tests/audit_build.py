"""Building the dbt project over hand-made billing sessions, as the audit and FOCUS tests do: the
rows go into a DuckDB file in target-duckdb's shape (or PostgreSQL in target-postgres's),
`meltano invoke dbt-duckdb build` builds the project into it, and the models are read back
(from DuckDB, or from PostgreSQL where a test built them there)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import psycopg
from helpers import APP_COLUMNS, PG, SESSION_COLUMNS, SUMMARY_COLUMNS, run_meltano

MODELS = "analytics"
SESSION_AUDIT = "kore_billing__session_audit"
CONVERSATION_AUDIT = "kore_billing__conversation_audit"
AUDIT_DAILY = "kore_billing__audit_daily"


def write_duckdb(
    path: Path,
    rows: list[dict],
    summaries: list[dict] | None = None,
    apps: list[dict] | None = None,
) -> None:
    """The two billing tables as target-duckdb writes them (names lower-cased), and the apps
    table when `apps` is given."""
    tables = [
        ("billing_sessions", SESSION_COLUMNS, rows),
        ("billing_usage_summary", SUMMARY_COLUMNS, summaries or []),
    ]
    if apps is not None:
        tables.append(("apps", APP_COLUMNS, apps))
    with duckdb.connect(str(path)) as db:
        db.execute("create schema kore_billing")
        for table, columns, data in tables:
            db.execute(
                f"create table kore_billing.{table} "
                f"({', '.join(f'{name} {kind}' for name, kind in columns.items())})"
            )
            lowered = [{key.lower(): value for key, value in row.items()} for row in data]
            if lowered:
                db.executemany(
                    f"insert into kore_billing.{table} values "  # noqa: S608
                    f"({', '.join('?' for _ in columns)})",
                    [[row.get(name) for name in columns] for row in lowered],
                )


def read_duckdb(path: Path, model: str) -> list[dict]:
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"select * from {path.stem}.{MODELS}.{model}")  # noqa: S608
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_postgres(schema: str, model: str) -> list[dict]:
    """A model's rows in PostgreSQL, as read_duckdb gives them."""
    with psycopg.connect(**PG) as conn:
        cursor = conn.execute(f"select * from {schema}.{model}")  # noqa: S608
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def columns_of(path: Path, model: str) -> list[str]:
    """The model's columns, in order, whether or not it has rows."""
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"select * from {path.stem}.{MODELS}.{model} limit 0")  # noqa: S608
        return [d[0] for d in cursor.description or []]


def build_duckdb(
    workdir: Path,
    rows: list[dict],
    summaries: list[dict] | None = None,
    dbt_vars: dict | None = None,
    *,
    check: bool = True,
    apps: list[dict] | None = None,
) -> tuple[str, Path, dict[str, dict], int]:
    """`meltano invoke dbt-duckdb build` over `rows`: output, the file, results (none when dbt
    stopped while parsing), exit code."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "audit.duckdb"
    write_duckdb(database, rows, summaries, apps)
    args = ["invoke", "dbt-duckdb", "build"]
    if dbt_vars is not None:
        args += ["--vars", json.dumps(dbt_vars)]
    done = run_meltano(args, workdir, env={"DBT_DUCKDB_PATH": str(database)}, check=check)
    results_file = workdir / "dbt-target" / "run_results.json"
    # Empty when dbt stopped before running anything (a var it rejects while parsing).
    results = {
        r["unique_id"].split(".")[2]: r
        for r in (json.loads(results_file.read_text())["results"] if results_file.exists() else [])
    }
    return done.stdout + done.stderr, database, results, done.returncode


def write_postgres(
    schema: str,
    rows: list[dict],
    summaries: list[dict] | None = None,
    apps: list[dict] | None = None,
) -> None:
    """The billing tables (and the apps table when `apps` is given) as MeltanoLabs
    target-postgres writes them: the tap's camelCase names, quoted."""
    sessions = {name: "timestamp" if "DateTime" in name else "varchar" for name in rows[0]}
    camel = {"botid": "botId", "periodstart": "periodStart", "defaultlanguage": "defaultLanguage"}
    camel |= {"createdon": "createdOn", "billingreadable": "billingReadable"}
    camel |= {"islinkedto": "isLinkedTo"}
    pg_types = {"VARCHAR": "varchar", "TIMESTAMP": "timestamp", "BIGINT": "bigint"}
    pg_types |= {"BOOLEAN": "boolean"}
    tables: list[tuple[str, dict[str, str], list]] = [
        ("billing_sessions", sessions, [[row[name] for name in sessions] for row in rows]),
        ("billing_usage_summary", SUMMARY_COLUMNS, summaries or []),
    ]
    if apps is not None:
        tables.append(("apps", APP_COLUMNS, apps))
    with psycopg.connect(**PG, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
        for table, columns, data in tables:
            names = {name: camel.get(name, name) for name in columns}
            definitions = ", ".join(
                f'"{names[name]}" {pg_types.get(kind, kind)}' for name, kind in columns.items()
            )
            conn.execute(f"create table {schema}.{table} ({definitions})")
            values = [
                row
                if isinstance(row, list)
                else [{k.lower(): v for k, v in row.items()}.get(name) for name in columns]
                for row in data
            ]
            if values:
                with conn.cursor() as cursor:
                    cursor.executemany(
                        f"insert into {schema}.{table} values "  # noqa: S608
                        f"({', '.join('%s' for _ in columns)})",
                        values,
                    )

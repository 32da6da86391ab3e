"""Where the models are read from, and the one query run there (query.py):

- by URL: `duckdb:///relative/file.duckdb`, `duckdb:////absolute/file.duckdb` (or the file's
  path) and `postgresql://user@host:port/db`, each with `?schema=` (default `analytics`, where
  the package builds its models), through the warehouse's own driver (duckdb, psycopg);
- by the dbt profile the pipeline used: `meltano --environment=E invoke dbt-<warehouse> show`,
  which reaches every warehouse dbt reaches (Snowflake among them) with the same settings as
  `meltano run ... dbt-<warehouse>:build`.

Every failure is a ReportError whose message names what failed and what to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from tap_kore_billing.report.dbt_show import shown_rows
from tap_kore_billing.report.query import MODELS, PRICED_COLUMN, dbt_query, report_query

DEFAULT_SCHEMA = "analytics"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
DBT_UTILITIES = ("dbt-duckdb", "dbt-postgres", "dbt-snowflake")


class ReportError(RuntimeError):
    """What could not be read, in one line that names it."""


@dataclass(frozen=True)
class Fetched:
    rows: list[tuple[t.Any, ...]]
    priced: bool
    source: str  # where the rows came from, for the page (never a password)


def _schema(query: dict[str, list[str]], url: str) -> str:
    schema = (query.get("schema") or [DEFAULT_SCHEMA])[0]
    if not IDENTIFIER.match(schema):
        raise ReportError(f"{url}: schema {schema!r} is not a plain SQL name")
    return schema


def fetch_url(url: str) -> Fetched:
    """The rows from the warehouse at `url` (DuckDB or PostgreSQL)."""
    parts = urlsplit(url)
    if parts.scheme in ("", "duckdb") or url.endswith(".duckdb"):
        return _fetch_duckdb(url, parts)
    if parts.scheme in ("postgresql", "postgres"):
        return _fetch_postgres(url, parts)
    if parts.scheme == "snowflake":
        raise ReportError(
            f"{_safe(url)}: Snowflake is read through the dbt profile the pipeline used: "
            "--dbt dbt-snowflake (and --environment)"
        )
    raise ReportError(
        f"{_safe(url)}: not a warehouse URL: give duckdb:///path/file.duckdb or "
        "postgresql://user@host:5432/database (with ?schema=analytics), or use --dbt"
    )


def _safe(url: str) -> str:
    """`url` without a password."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _fetch_duckdb(url: str, parts: t.Any) -> Fetched:
    import duckdb  # noqa: PLC0415 - only this warehouse needs it

    # As SQLAlchemy spells it: duckdb:///relative/file.duckdb, duckdb:////absolute/file.duckdb
    path = Path(parts.path[1:] if parts.scheme == "duckdb" else url.split("?", maxsplit=1)[0])
    schema = _schema(parse_qs(parts.query), url)
    if not path.is_file():
        raise ReportError(
            f"{url}: no DuckDB file at {path} (run `make demo` or the pipeline first)"
        )
    try:
        with duckdb.connect(str(path), read_only=True) as db:
            tables = {
                name
                for (name,) in db.execute(
                    "select table_name from information_schema.tables where table_schema = ?",
                    [schema],
                ).fetchall()
            }
            _require(tables, schema, str(path))
            priced = _priced(db.execute, schema)
            rows = db.sql(report_query(lambda m: f"{schema}.{m}", priced=priced)).fetchall()
    except duckdb.Error as exc:
        raise ReportError(f"{path}: {_first_line(str(exc))}") from None
    return Fetched(rows, priced, f"DuckDB {path}, schema {schema}")


def _fetch_postgres(url: str, parts: t.Any) -> Fetched:
    import psycopg  # noqa: PLC0415 - only this warehouse needs it

    query = parse_qs(parts.query)
    schema = _schema(query, url)
    rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "schema")
    conninfo = urlunsplit(parts._replace(scheme="postgresql", query=rest))
    shown = _safe(urlunsplit(parts._replace(query="")))
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            tables = {
                name
                for (name,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = %s",
                    [schema],
                ).fetchall()
            }
            _require(tables, schema, shown)
            priced = _priced(lambda sql, args: conn.execute(sql.replace("?", "%s"), args), schema)
            sql = report_query(lambda m: f"{schema}.{m}", priced=priced)
            rows = conn.execute(sql.encode()).fetchall()  # type: ignore[call-overload]
    except psycopg.Error as exc:
        raise ReportError(f"{shown}: {_first_line(str(exc))}") from None
    return Fetched(rows, priced, f"PostgreSQL {shown}, schema {schema}")


def _require(tables: set[str], schema: str, where: str) -> None:
    missing = [m for m in MODELS if m not in {name.lower() for name in tables}]
    if missing:
        raise ReportError(
            f"{where}: schema {schema} lacks the package's models {', '.join(missing)} "
            "(run `dbt build` there first, or name the models' schema with ?schema=)"
        )


def _priced(execute: t.Callable[..., t.Any], schema: str) -> bool:
    found = execute(
        "select count(*) from information_schema.columns where table_schema = ? "
        "and table_name = 'kore_billing__audit_daily' and lower(column_name) = ?",
        [schema, PRICED_COLUMN],
    ).fetchone()
    return bool(found and found[0])


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else message


def meltano_project(given: Path | None) -> Path:
    here = (given or Path.cwd()).resolve()
    for folder in (here,) if given else (here, *here.parents):
        if (folder / "meltano.yml").is_file():
            return folder
    raise ReportError(
        f"no meltano.yml in {here}{'' if given else ' or above'}: run in the Meltano project's "
        "folder, or give --project"
    )


def fetch_dbt(
    utility: str, environment: str, project: Path | None = None, env: dict[str, str] | None = None
) -> Fetched:
    """The rows through `meltano invoke <utility> show`: the dbt profile the pipeline used."""
    if utility not in DBT_UTILITIES:
        raise ReportError(f"--dbt {utility!r}: choose one of {', '.join(DBT_UTILITIES)}")
    root = meltano_project(project)
    beside = Path(sys.executable).parent / "meltano"
    meltano = str(beside) if beside.exists() else shutil.which("meltano")
    if meltano is None:
        raise ReportError("meltano is not installed beside this Python nor on PATH")
    command = [
        meltano, "--log-level=warning", f"--environment={environment}", "invoke", utility,
        "show", "--inline", dbt_query(), "--output", "json", "--limit", "-1",
        "--log-format", "json",
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        command,
        cwd=root,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    rows, errors, priced = _parse_show(done.stdout)
    where = f"meltano --environment={environment} invoke {utility}"
    if done.returncode != 0 or rows is None:
        said = "; ".join(errors) or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReportError(f"{where} show failed: {said}")
    return Fetched(rows, priced, f"dbt profile of {utility} (Meltano environment {environment})")


def _parse_show(stdout: str) -> tuple[list[tuple[t.Any, ...]] | None, list[str], bool]:
    """dbt's ShowNode rows in query.COLUMNS order, the messages of its error events, and
    whether the amount columns were read."""
    from tap_kore_billing.report.query import COLUMNS  # noqa: PLC0415

    shown, errors = shown_rows(stdout)
    if shown is None:
        return None, errors, False
    rows = [tuple(row.get(c) for c in COLUMNS) for row in shown]
    priced = any(row.get("a1") is not None for row in shown if row["kind"] == "daily")
    return rows, errors, priced

"""The local Snowflake of the `snowflake-local` environment: a fakesnow server on 127.0.0.1.

    meltano --environment=snowflake-local invoke fakesnow:serve     # until Ctrl-C
    meltano --environment=snowflake-local invoke fakesnow:query "select ..."

Runs in the fakesnow utility's virtualenv (meltano.yml), never in the tap's. Two choices differ
from fakesnow's own `fakesnow -s`, both so that it behaves like one Snowflake account:

- The databases persist, one DuckDB file per database under SNOWFLAKE_LOCAL_DIR
  (`output/snowflake-local/`): every session shares one fakesnow instance on that folder.
  `fakesnow -s` keeps them in memory; its per-session FAKESNOW_DB_PATH opens the files once per
  session (which DuckDB refuses while another session has them) and dbt cannot send it.
- PRIMARY KEY constraints are recorded nowhere and not enforced, as in Snowflake, where they are
  informational. DuckDB enforces them, which would reject the second row of a key that an
  append-only load writes.

The port is TARGET_SNOWFLAKE_PORT (the variable the target and dbt-snowflake read in this
environment), 64616 by default, fakesnow's customary port. `serve` prints one JSON line when it
is ready; SIGTERM or Ctrl-C stop it and write the files.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import snowflake.connector
from fakesnow import server as start_server
from fakesnow.cursor import FakeSnowflakeCursor
from fakesnow.instance import FakeSnow
from sqlglot import exp

# `import fakesnow.server` would rebind the name fakesnow.server (the function) to the module.
server_module = importlib.import_module("fakesnow.server")
HOST = "127.0.0.1"
DEFAULT_PORT = 64616
ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parent.parent)


def port() -> int:
    text = os.environ.get("TARGET_SNOWFLAKE_PORT") or str(DEFAULT_PORT)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        sys.exit(f"TARGET_SNOWFLAKE_PORT is {text!r}, not a port number (1-65535)")
    return int(text)


def data_dir() -> Path:
    return Path(os.environ.get("SNOWFLAKE_LOCAL_DIR") or ROOT / "output" / "snowflake-local")


def without_primary_keys(expression: exp.Expr) -> exp.Expr:
    """CREATE TABLE with its PRIMARY KEY clauses removed (Snowflake does not enforce them)."""
    if isinstance(expression, exp.Create):
        for node in list(expression.find_all(exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)):
            owner = node.parent if isinstance(node.parent, exp.ColumnConstraint) else node
            owner.pop()
    return expression


def serve() -> int:
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    transform = FakeSnowflakeCursor._transform

    def _transform(cursor: FakeSnowflakeCursor, expression: exp.Expr, params: Any) -> exp.Expr:
        return transform(cursor, without_primary_keys(expression), params)

    FakeSnowflakeCursor._transform = _transform  # type: ignore[method-assign]
    shared = FakeSnow(db_path=folder)
    server_module.shared_fs = shared
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with start_server(port=port(), host=HOST):
            print(json.dumps({"url": f"http://{HOST}:{port()}", "data": str(folder)}), flush=True)
            stop.wait()
    except RuntimeError:  # uvicorn has logged why (usually: the port is in use)
        return 1
    finally:
        shared.duck_conn.close()  # writes the DuckDB files
    return 0


def query(sql: str) -> int:
    """Print the rows of one statement as JSON lines, through the running server."""
    with snowflake.connector.connect(
        account="fakesnow",
        user="fake",
        password="fake-password",  # noqa: S106  (the server accepts any credentials)
        host=HOST,
        port=port(),
        protocol="http",
        database=os.environ.get("TARGET_SNOWFLAKE_DATABASE") or "KORE_LOCAL",
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        network_timeout=30,
    ) as connection:
        cursor = connection.cursor(snowflake.connector.DictCursor)
        for row in cursor.execute(sql) or []:
            print(json.dumps(row, default=str))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return serve()
    if argv[:1] == ["query"] and len(argv) == 2:
        return query(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

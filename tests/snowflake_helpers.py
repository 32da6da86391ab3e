"""The local Snowflake of the `snowflake-local` environment, as the pipeline tests run it:
`meltano invoke fakesnow:serve` on a free port, and statements through `fakesnow:query`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import CAPTURED_OUTPUT, ROOT, run_meltano

from tap_kore_billing.orchestration.local_snowflake import LocalSnowflake, free_port
from tap_kore_billing.orchestration.local_snowflake import local_snowflake as served

LOCAL = "--environment=snowflake-local"  # after run_meltano's --environment=dev: the last wins


def local_settings(folder: Path) -> dict[str, str]:
    """A private server: its own port (the target and dbt-snowflake follow it) and data folder."""
    return {
        "TARGET_SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_LOCAL_DIR": str(folder / "snowflake-local"),
    }


@contextmanager
def local_snowflake(workdir: Path, env: dict[str, str]) -> Iterator[dict]:
    """The local Snowflake until the block ends (its Meltano state in `workdir`); what it
    printed joins the secret check."""
    own = {**os.environ, "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'serve.db'}", **env}
    server = LocalSnowflake()
    try:
        with served(ROOT, own) as server:
            yield server.info
    finally:
        CAPTURED_OUTPUT.append(server.output)


def query(sql: str, workdir: Path, env: dict[str, str]) -> list[dict]:
    """Rows through `meltano invoke fakesnow:query`, column names as Snowflake reports them."""
    done = run_meltano([LOCAL, "invoke", "fakesnow:query", sql], workdir, env=env)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

"""The local Snowflake of the `snowflake-local` environment, as the pipeline tests run it:
`meltano invoke fakesnow:serve` on a free port, and statements through `fakesnow:query`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import CAPTURED_OUTPUT, MELTANO, ROOT, run_meltano

LOCAL = "--environment=snowflake-local"  # after run_meltano's --environment=dev: the last wins


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_settings(folder: Path) -> dict[str, str]:
    """A private server: its own port (the target and dbt-snowflake follow it) and data folder."""
    return {
        "TARGET_SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_LOCAL_DIR": str(folder / "snowflake-local"),
    }


@contextmanager
def local_snowflake(workdir: Path, env: dict[str, str]) -> Iterator[dict]:
    """`meltano invoke fakesnow:serve` until the block ends, then stopped as Ctrl-C would."""
    server = subprocess.Popen(
        [MELTANO, LOCAL, "invoke", "fakesnow:serve"],
        cwd=ROOT,
        env={**os.environ, "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'serve.db'}", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # one signal reaches Meltano and the server it started
    )
    assert server.stdout is not None
    assert server.stderr is not None
    ready = server.stdout.readline()  # the server prints one line once it listens
    try:
        assert ready, server.stderr.read()[-3000:] if server.poll() is not None else "no line"
        yield json.loads(ready)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        _, errors = server.communicate(timeout=60)
        CAPTURED_OUTPUT.append(ready + errors)


def query(sql: str, workdir: Path, env: dict[str, str]) -> list[dict]:
    """Rows through `meltano invoke fakesnow:query`, column names as Snowflake reports them."""
    done = run_meltano([LOCAL, "invoke", "fakesnow:query", sql], workdir, env=env)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

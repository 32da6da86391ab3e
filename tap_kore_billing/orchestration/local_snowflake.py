"""The local Snowflake (fakesnow, docs/snowflake-local.md) for the length of a block:
`meltano --environment=snowflake-local invoke fakesnow:serve`, stopped as Ctrl-C stops it, so
that its files are complete. `make demo WAREHOUSE=snowflake` and the tests start it here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tap_kore_billing.orchestration.meltano_process import meltano_executable

ENVIRONMENT = "snowflake-local"


class LocalSnowflakeError(RuntimeError):
    """The server did not start; the message ends with what it printed."""


@dataclass
class LocalSnowflake:
    info: dict[str, t.Any] = field(default_factory=dict)  # the server's first line: its url
    output: str = ""  # everything it printed, once stopped


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_snowflake(project: Path, env: t.Mapping[str, str]) -> Iterator[LocalSnowflake]:
    """The server for the block, with the settings `env` gives it (TARGET_SNOWFLAKE_PORT,
    SNOWFLAKE_LOCAL_DIR); what it printed is in the yielded object's `output` afterwards."""
    server = subprocess.Popen(  # noqa: S603 - our own command line, no shell
        [meltano_executable(), f"--environment={ENVIRONMENT}", "invoke", "fakesnow:serve"],
        cwd=project,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # one signal reaches Meltano and the server it started
    )
    running = LocalSnowflake()
    ready = server.stdout.readline() if server.stdout else ""  # one line once it listens
    try:
        if not ready:
            said = server.stderr.read().strip() if server.stderr else ""
            raise LocalSnowflakeError(
                f"the local Snowflake did not start: {(said or 'no output')[-500:]}"
            )
        running.info = json.loads(ready)
        yield running
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
        _, errors = server.communicate(timeout=60)
        running.output = ready + (errors or "")

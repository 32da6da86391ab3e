"""What the end-to-end and pipeline tests share: the tap run as its console script against the
emulator, Meltano run in the project, and every run's output kept for the secret check."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import typing as t
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tap_kore_billing.core.datetimes import parse_setting_datetime
from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.tap import TapKoreBilling

ROOT = Path(__file__).resolve().parent.parent
MELTANO = str(Path(sys.executable).parent / "meltano")
PG: dict[str, t.Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
START = "2024-01-01T00:00:00Z"
SESSIONS = ("billing_sessions",)  # select only this stream, where request counts matter
# target-duckdb's tables for the streams: the tap's names lower-cased, UTC timestamps.
SESSION_COLUMNS = {
    "billingsessionid": "VARCHAR",
    "botid": "VARCHAR",
    "channel": "VARCHAR",
    "koreuserid": "VARCHAR",
    "channeluserid": "VARCHAR",
    "billingsessiontype": "VARCHAR",
    "conversationsessionid": "VARCHAR",
    "conversationsessionstartdatetime": "TIMESTAMP",
    "conversationsessionenddatetime": "TIMESTAMP",
    "billingsessionstartdatetime": "TIMESTAMP",
    "billingsessionenddatetime": "TIMESTAMP",
}
APP_COLUMNS = {
    "botid": "VARCHAR",
    "name": "VARCHAR",
    "status": "VARCHAR",
    "purpose": "VARCHAR",
    "type": "VARCHAR",
    "defaultlanguage": "VARCHAR",
    "createdon": "TIMESTAMP",
    "islinkedto": "VARCHAR",  # an array: JSON text in target-duckdb; staging skips it
    "source": "VARCHAR",
    "billingreadable": "BOOLEAN",
}
SUMMARY_COLUMNS = {
    "botid": "VARCHAR",
    "granularity": "VARCHAR",
    "periodstart": "TIMESTAMP",
    "requests": "BIGINT",
    "sessions": "BIGINT",
    "conversations": "BIGINT",
    "alert_notifications": "BIGINT",
    "proactive_notifications": "BIGINT",
}
# Everything every tap run printed, so one check can prove no secret ever reached the output.
CAPTURED_OUTPUT: list[str] = []
SECRETS_SEEN: set[str] = set()


@dataclass
class TapRun:
    """What one run of `tap-kore-billing` printed, split into Singer messages and logs."""

    exit_code: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    @property
    def records(self) -> list[dict]:
        """The billing_sessions records."""
        return self.stream_records("billing_sessions")

    @property
    def summary(self) -> list[dict]:
        """The billing_usage_summary records."""
        return self.stream_records("billing_usage_summary")

    def stream_records(self, stream: str) -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict:
        return self.states[-1]

    @property
    def ids(self) -> list[str]:
        return [r["billingSessionId"] for r in self.records]

    def bookmarks(self, stream: str = "billing_sessions") -> dict[str, str]:
        """Partition (as "k=v k=v") -> bookmark, from the final state."""
        partitions = self.final_state["bookmarks"].get(stream, {}).get("partitions", [])
        return {
            " ".join(f"{k}={v}" for k, v in p["context"].items()): p["replication_key_value"]
            for p in partitions
        }


def run_tap(
    tmp_path: Path,
    config: dict,
    *,
    state: dict | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 300,
    streams: tuple[str, ...] | None = None,
    log_level: str = "INFO",
) -> TapRun:
    """Run the console script the way Meltano does and parse what it printed.

    `streams` selects some streams (as Meltano's `select` does, through a catalog); by
    default every stream runs. `log_level` DEBUG adds a line per window.
    """
    for key in ("client_secret", "auth_token"):
        if config.get(key):
            SECRETS_SEEN.add(str(config[key]))
    config_path = tmp_path / f"config-{len(CAPTURED_OUTPUT)}.json"
    config_path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "tap_kore_billing", "--config", str(config_path), *args]
    if streams is not None:
        catalog_path = tmp_path / f"catalog-{len(CAPTURED_OUTPUT)}.json"
        catalog_path.write_text(json.dumps(catalog_selecting(streams)))
        command += ["--catalog", str(catalog_path)]
    if state is not None:
        state_path = tmp_path / f"state-{len(CAPTURED_OUTPUT)}.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    level = os.environ.get("TEST_TAP_LOG_LEVEL", log_level)
    env = {**os.environ, "TAP_KORE_BILLING_LOGLEVEL": level}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return TapRun(done.returncode, done.stdout, done.stderr, messages)


def unreachable_config() -> dict:
    """Settings pointing at a port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {
        "api_url": f"http://127.0.0.1:{port}",
        "client_id": "cs-test",
        "client_secret": "obviously-fake-secret-for-tests",
        "bot_ids": ["st-test"],
        "start_date": "2024-01-01",
        "retry_initial_delay": 0.01,
    }


def catalog_selecting(streams: tuple[str, ...]) -> dict:
    """The tap's catalog with only `streams` selected."""
    catalog = TapKoreBilling(
        config={"start_date": START, "auth_token": "x", "bot_ids": ["st-x"]},
        parse_env_config=False,
        validate_config=False,
    ).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def sandbox_config(sb: Sandbox, **overrides: object) -> dict:
    """A tap config pointing at the emulator with its generated credentials."""
    # Get Bots answers hold the apps' client secrets: no run may print one.
    SECRETS_SEEN.add(sb.planted_secret)
    config = {
        "api_url": sb.url,
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "bot_ids": sb.bot_ids,
        "start_date": START,
        "window_days": 30,
        "page_size": 100,
        "retry_initial_delay": 0.05,
        # Tests that are not about the limiter must not wait for it.
        "requests_per_minute": 100_000,
        "requests_per_hour": 1_000_000,
        # Usage summary jobs: status checks from 10 ms on, not 1 s.
        "summary_poll_seconds": 0.01,
    }
    config.update(overrides)
    return config


def dt(text: str):
    return parse_setting_datetime(text)


def postgres_or_skip() -> None:
    """PostgreSQL on 127.0.0.1:5432, or a skip with the reason (a failure under CI)."""
    try:
        psycopg.connect(**PG, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc}); CI runs these")


@contextmanager
def postgres_schemas(prefix: str) -> Iterator[tuple[str, str]]:
    """A loader schema and a models schema of their own (`prefix`_load_..., `prefix`_models_...),
    dropped afterwards with the schema dbt stores test failures in; a skip (a failure under CI)
    without PostgreSQL."""
    postgres_or_skip()
    suffix = uuid.uuid4().hex[:8]
    names = (f"{prefix}_load_{suffix}", f"{prefix}_models_{suffix}")
    try:
        yield names
    finally:
        with psycopg.connect(**PG, autocommit=True) as conn:
            for name in (*names, f"{names[1]}_dbt_test__audit"):
                conn.execute(f"drop schema if exists {name} cascade")


def draw_seed(variable: str = "KORE_AUDIT_SEED") -> int:
    """A new seed each run, printed (pytest shows it with a failure); `variable`=<seed> in the
    environment replays one."""
    seed = int(os.environ.get(variable) or random.randrange(2**32))  # noqa: S311 - test data
    print(f"seed {seed}: {variable}={seed} replays this test's data")
    return seed


def run_meltano(
    args: list[str],
    workdir: Path,
    *,
    state_db: str = "meltano",
    check: bool = True,
    env: t.Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`meltano --environment=dev ARGS` in the project, with a private state database and
    dbt's artifacts under `workdir`; with `check`, fails the test on a non-zero exit."""
    environment = {
        **os.environ,
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / f'{state_db}.db'}",
        "DBT_TARGET_PATH": str(workdir / "dbt-target"),
        "DBT_LOG_PATH": str(workdir / "dbt-logs"),
        **(env or {}),
    }
    return meltano_in(ROOT, ["--environment=dev", *args], environment, check=check)


def meltano_in(
    project: Path,
    args: list[str],
    environment: t.Mapping[str, str],
    *,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`meltano ARGS` in `project` with exactly `environment`, its output kept for the secret
    check; with `check`, fails the test on a non-zero exit. Under pytest-xdist the project's
    plugins were installed before the workers started, and `install` is skipped there."""
    if project == ROOT and "install" in args[:2] and os.environ.get("PYTEST_XDIST_WORKER"):
        return subprocess.CompletedProcess([MELTANO, *args], 0, "", "")
    done = subprocess.run(
        [MELTANO, *args],
        cwd=project,
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    if check:
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def tap_env(sb: Sandbox, **overrides: str) -> dict[str, str]:
    """TAP_KORE_BILLING_* variables pointing the tap at `sb`, as Meltano users set them."""
    SECRETS_SEEN.update((sb.client_secret, sb.planted_secret))
    env = {
        "TAP_KORE_BILLING_API_URL": sb.url,
        "TAP_KORE_BILLING_CLIENT_ID": sb.client_id,
        "TAP_KORE_BILLING_CLIENT_SECRET": sb.client_secret,
        "TAP_KORE_BILLING_API_SCOPE": "bot",
        "TAP_KORE_BILLING_BOT_IDS": json.dumps(sb.bot_ids),
        "TAP_KORE_BILLING_START_DATE": min(s["start"] for s in sb.expected()).isoformat(),
        "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
        "TAP_KORE_BILLING_SUMMARY_POLL_SECONDS": "0.05",
    }
    return {**env, **overrides}


def postgres_pipeline_env(load_schema: str, models_schema: str) -> dict[str, str]:
    """The PostgreSQL loader and dbt-postgres, as a user sets them: PG* variables and
    DBT_POSTGRES_*, the loader's tables in `load_schema`, the models in `models_schema`."""
    return {
        "PGHOST": PG["host"],
        "PGPORT": str(PG["port"]),
        "PGUSER": PG["user"],
        "PGPASSWORD": "unused-with-trust-auth",
        "PGDATABASE": PG["dbname"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": load_schema,
        "DBT_POSTGRES_HOST": PG["host"],
        "DBT_POSTGRES_PORT": str(PG["port"]),
        "DBT_POSTGRES_USER": PG["user"],
        "DBT_POSTGRES_PASSWORD": "unused-with-trust-auth",
        "DBT_POSTGRES_DBNAME": PG["dbname"],
        "DBT_POSTGRES_SCHEMA": models_schema,
    }


def run_demo(work: Path, *args: str, **variables: str) -> str:
    """`scripts/demo.py ARGS` as `make demo` runs it, its output, Meltano's state and dbt's
    files in `work`, the emulator on a free port; its stdout (a failure shows the last lines)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DEMO_OUTPUT": str(work / "output"),
        "DEMO_PORT": str(port),
        "MELTANO_DATABASE_URI": f"sqlite:///{work / 'meltano.db'}",
        "DBT_TARGET_PATH": str(work / "dbt-target"),
        "DBT_LOG_PATH": str(work / "dbt-logs"),
        **variables,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout

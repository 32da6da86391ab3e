"""`meltano run` stopped midway into PostgreSQL, then run again: what Meltano 4.4.1 kept, and
the tap's log levels under Meltano (`structured-logging`).

What a stop keeps (see docs/stops.md, "When a run is stopped"): Meltano saves a state only when
the loader confirms one, and target-postgres confirms one mid-run only once its records are
five minutes old (singer-sdk's fixed `_MAX_RECORD_AGE_IN_MINUTES`), besides at the end of its
input. Meltano stopped by a signal drops the state the loader confirms while it shuts down. So
a stop of Meltano keeps the loader's last five-minute state; a stop through
`scripts/meltano_stoppable.py` (the signal to the tap alone) keeps everything the tap finished.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth); under CI a missing server fails these tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from helpers import (
    CAPTURED_OUTPUT,
    MELTANO,
    PG,
    ROOT,
    postgres_or_skip,
    run_meltano,
    tap_env,
)

from tap_kore_billing.sandbox import Sandbox

pytestmark = pytest.mark.postgres
STATE_ID = "dev:tap-kore-billing-to-target-postgres"
RUN = ["run", "tap-kore-billing", "target-postgres"]
# An app whose minute's quota is spent says so once its partition is set aside: by then its
# first windows are done (on loopback, within milliseconds of their last request).
QUOTA_WAIT = re.compile(r"tap-kore-billing Waiting \d+ s for the quota of app (\S+)")
STATE_SAVED = "Incremental state has been updated"


@pytest.fixture(scope="module")
def meltano_installed(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("meltano-stops")
    run_meltano(["install", "tap-kore-billing", "target-postgres"], workdir)
    return workdir


@pytest.fixture
def schema():
    postgres_or_skip()
    name = f"kore_stop_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(**PG, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {name} cascade")


def pipeline_env(sb: Sandbox, workdir: Path, schema: str, **overrides: str) -> dict[str, str]:
    """The tap on `sb` (the sessions stream only: request counts compare), the loader on
    `schema`, and a state database of the test's own."""
    return {
        **os.environ,
        **tap_env(sb),
        "TAP_KORE_BILLING__SELECT": '["billing_sessions.*"]',
        "TAP_KORE_BILLING_WINDOW_DAYS": "10",
        "PGHOST": PG["host"],
        "PGPORT": str(PG["port"]),
        "PGUSER": PG["user"],
        "PGPASSWORD": "unused-with-trust-auth",  # the target insists on a value
        "PGDATABASE": PG["dbname"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / f'{schema}.db'}",
        **overrides,
    }


def stop_midway(
    command: list[str],
    env: dict[str, str],
    ready,
    limit: float,
    signum: int = signal.SIGTERM,
    *,
    group: bool = False,
) -> tuple[int, str]:
    """Start `command` in a process group of its own; once `ready(lines so far)` holds, send
    `signum` to it, or with `group` to its whole group as a terminal's Ctrl-C does; (exit code,
    output). Fails if the run ends first or `limit` seconds pass. (Meltano's plugins share
    Meltano's group; the wrapper starts Meltano in a session of its own.)"""
    deadline = time.monotonic() + limit
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as run:
        assert run.stdout is not None
        try:
            for line in run.stdout:
                lines.append(line)
                if ready(lines):
                    if group:
                        os.killpg(run.pid, signum)
                    else:
                        run.send_signal(signum)
                    break
                assert time.monotonic() < deadline, "the stop point never came"
            else:
                pytest.fail("the run ended before the stop point:\n" + "".join(lines)[-3000:])
            rest, _ = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
    output = "".join(lines) + rest
    CAPTURED_OUTPUT.append(output)
    return run.returncode, output


def apps_waiting(lines: list[str]) -> set[str]:
    """The apps that have spent their minute's quota, by the tap's lines so far."""
    return {match.group(1) for line in lines if (match := QUOTA_WAIT.search(line))}


def loaded_ids(schema: str) -> list[str]:
    with psycopg.connect(**PG) as conn:
        query = f'select "billingSessionId" from {schema}.billing_sessions'  # noqa: S608
        return [row[0] for row in conn.execute(query).fetchall()]


def saved_state(workdir: Path, schema: str, env: dict[str, str]) -> str:
    done = run_meltano(["state", "get", STATE_ID], workdir, state_db=schema, env=env)
    return done.stdout.strip()


def full_run_requests(sb: Sandbox, workdir: Path, schema: str, env: dict[str, str]) -> int:
    """Requests of an uninterrupted run with the same settings (its own state and schema), at
    full speed: the quota changes when requests go, not how many."""
    baseline = f"{schema}_full"
    sb.reset_stats()
    fast = {**env, **loader_on(baseline, workdir), "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000"}
    try:
        run_meltano(RUN, workdir, state_db=baseline, env=fast)
    finally:
        with psycopg.connect(**PG, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {baseline} cascade")
    return sb.stats()["requests"]


def loader_on(schema: str, workdir: Path) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        "MELTANO_DATABASE_URI": f"sqlite:///{workdir / f'{schema}.db'}",
    }


def rerun_after_stop(sb: Sandbox, workdir: Path, schema: str, env: dict[str, str]) -> int:
    """Run again at full speed from the state kept; its requests. Checks that nothing is lost
    and nothing doubled."""
    sb.reset_stats()
    fast = {**env, "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000"}
    run_meltano(RUN, workdir, state_db=schema, env=fast)
    ids = loaded_ids(schema)
    assert len(ids) == len(set(ids)), "the re-read windows were upserted, not appended"
    assert set(ids) == {s["billingSessionId"] for s in sb.expected()}
    return sb.stats()["requests"]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_through_the_wrapper_keeps_every_window_the_tap_finished(
    meltano_installed, schema, signum, code
):
    """SIGTERM to the wrapper (a scheduler), or SIGINT to its process group (Ctrl-C)."""
    # 8 requests a minute per app: its links, then its first three windows (two pages each)
    # come at once, then the run waits a minute per four windows, minutes in all. Stop once
    # all three have spent it, within the first minute.
    with Sandbox(seed=51, apps=3, sessions=3000, max_page_size=50) as sb:
        env = pipeline_env(sb, meltano_installed, schema, TAP_KORE_BILLING_REQUESTS_PER_MINUTE="8")
        wrapper = [sys.executable, str(ROOT / "scripts" / "meltano_stoppable.py")]
        exit_code, output = stop_midway(
            [*wrapper, "--environment=dev", *RUN],
            env,
            lambda lines: len(apps_waiting(lines)) == 3,
            limit=240,
            signum=signum,
            group=True,
        )
        assert exit_code == code, output[-3000:]
        # The tap's own last line, shown at its level (structured-logging), then Meltano saving
        # the state the loader confirmed at the end of its input.
        stop_line = re.search(
            r"\[error\s*\] tap-kore-billing tap-kore-billing stopped by SIGTERM.*", output
        )
        assert stop_line, output[-3000:]
        # The state is kept: no caveat.
        assert "meltano_stoppable" not in stop_line.group(0)
        assert "the next run goes on from there" in stop_line.group(0)
        assert STATE_SAVED in output[stop_line.end() :], output[-3000:]
        assert '"billing_sessions"' in saved_state(meltano_installed, schema, env)
        kept = len(set(loaded_ids(schema)))
        rerun = rerun_after_stop(sb, meltano_installed, schema, env)
        full = full_run_requests(sb, meltano_installed, schema, env)
        print(
            f"wrapper stop by {signal.Signals(signum).name}: {kept} rows kept; "
            f"re-run {rerun} requests, full run {full}"
        )
        assert 0 < rerun < full


def test_a_stop_of_meltano_itself_is_told_that_meltano_may_not_keep_the_state(
    meltano_installed, schema
):
    """SIGTERM to `meltano run` (no wrapper): Meltano passes it on to the tap, whose last line
    must not promise that the next run goes on from its last STATE."""
    with Sandbox(seed=52, apps=2, sessions=2000, max_page_size=50) as sb:
        env = pipeline_env(sb, meltano_installed, schema, TAP_KORE_BILLING_REQUESTS_PER_MINUTE="8")
        exit_code, output = stop_midway(
            [MELTANO, "--environment=dev", *RUN],
            env,
            lambda lines: bool(apps_waiting(lines)),
            limit=240,
        )
    assert exit_code != 0, output[-3000:]
    [stop_line] = [line for line in output.splitlines() if "tap-kore-billing stopped by" in line]
    assert "may not keep that state" in stop_line
    assert "scripts/meltano_stoppable.py" in stop_line
    assert "goes on from there" not in stop_line


def test_the_taps_errors_show_as_errors_under_meltano(meltano_installed, schema):
    with Sandbox(seed=53, apps=1, sessions=20) as sb:
        env = pipeline_env(sb, meltano_installed, schema, TAP_KORE_BILLING_START_DATE="2024-13-01")
        done = run_meltano(RUN, meltano_installed, state_db=schema, check=False, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1
    level = {
        "setting `start_date` is '2024-13-01'": "error",
        "tap-kore-billing v": "info",  # the banner
    }
    for text, name in level.items():
        shown = [line for line in output.splitlines() if f"tap-kore-billing {text}" in line]
        assert shown, output[-3000:]
        assert all(f"[{name}" in line for line in shown), shown

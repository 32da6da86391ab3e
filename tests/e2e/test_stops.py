"""A run stopped by a signal says so and exits 128 + the signal, as schedulers expect; its last
STATE covers what it wrote, so the next run goes on from there and loses nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from helpers import (
    CAPTURED_OUTPUT,
    SECRETS_SEEN,
    SESSIONS,
    catalog_selecting,
    run_tap,
    sandbox_config,
)

from tap_kore_billing.sandbox import Sandbox

# A line per window (DEBUG) tells when a window with sessions is done.
DEBUG_LOGS = {**os.environ, "TAP_KORE_BILLING_LOGLEVEL": "DEBUG"}


def stopped_run(tmp_path, config: dict, signum: int) -> tuple[int, str, list[dict]]:
    """Start the console script, send `signum` once a window with sessions is done; (exit
    code, stderr, messages)."""
    SECRETS_SEEN.add(str(config["client_secret"]))
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog_selecting(SESSIONS)))
    command = [sys.executable, "-m", "tap_kore_billing", "--config", str(tmp_path / "config.json")]
    command += ["--catalog", str(tmp_path / "catalog.json")]
    out_path = tmp_path / "out.jsonl"
    # stdout to a file, as `> out.jsonl`: a pipe nobody reads would block the tap's writes.
    with (
        out_path.open("w") as out,
        subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, text=True, env=DEBUG_LOGS
        ) as tap,
    ):
        assert tap.stderr is not None
        seen = []
        for line in tap.stderr:
            seen.append(line)
            if re.search(r"Partition \S+ window \d+/\d+ .*: [1-9]\d* rows?", line):
                break
        # SIGTERM: a partition set aside for its quota says so when the wait starts (6 a
        # minute). SIGINT: while it waits, the progress line comes all the same (every 30 s).
        awaited = "billing_sessions | Waiting" if signum == signal.SIGTERM else "| Stream billing"
        for line in tap.stderr:
            seen.append(line)
            if awaited in line:
                break
        tap.send_signal(signum)
        _, stderr = tap.communicate(timeout=60)
    stderr = "".join(seen) + stderr
    stdout = out_path.read_text()
    CAPTURED_OUTPUT.append(stdout + stderr)
    messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return tap.returncode, stderr, messages


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_exits_non_zero_says_so_and_resumes_without_loss(tmp_path, signum, code):
    with Sandbox(seed=31, apps=1, sessions=2000, max_page_size=100) as sb:
        # 6 requests a minute: the run lasts minutes, its first windows end in seconds.
        start = sb.data_start.isoformat()
        config = sandbox_config(sb, requests_per_minute=6, window_days=15, start_date=start)
        exit_code, stderr, messages = stopped_run(tmp_path, config, signum)
        assert exit_code == code, stderr[-2000:]
        name = signal.Signals(signum).name
        # (The SDK's METRIC lines for the timers the stop closed may follow.)
        last_line = [line for line in stderr.splitlines() if "METRIC" not in line][-1]
        assert f"stopped by {name} before the run finished (exit {code})" in last_line
        assert "Gracefully shutting down" not in stderr
        if signum == signal.SIGINT:
            assert re.search(
                r"Stream billing_sessions: \d+/\d+ windows, \d+ records, \d+ requests in \d+ s "
                r"\(\d+ records/s\); about \d+ (s|min) left at the quota's pace",
                stderr,
            )
        if signum == signal.SIGTERM:
            assert re.search(
                r"Waiting \d+ s for the quota of app st-\S+ \(requests_per_minute 6", stderr
            )
        # The last STATE stands for every record before it; records after it (pages of a
        # window the stop cut short: the STATE is not sent again unchanged) are read again.
        last_state = max(i for i, m in enumerate(messages) if m["type"] == "STATE")
        assert {m["type"] for m in messages[last_state + 1 :]} <= {"RECORD"}
        first = [m["record"] for m in messages if m["type"] == "RECORD"]
        assert first, "the first window's records were written"
        # The next run goes on from the last STATE and, with it, covers every session.
        resumed = run_tap(
            tmp_path,
            sandbox_config(sb, window_days=15, start_date=start),
            state=messages[last_state]["value"],
            streams=SESSIONS,
        )
        assert resumed.exit_code == 0, resumed.stderr[-2000:]
        expected = {s["billingSessionId"] for s in sb.expected()}
        got = {r["billingSessionId"] for r in first} | set(resumed.ids)
        assert got == expected
        assert len(resumed.ids) < len(expected)  # it did not start again from start_date

"""What an operator reads: a start_date in the future, a state entry the tap did not write,
windows numbered per partition, retries that name the host, counts in agreeing words."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

from helpers import SESSIONS, catalog_selecting, run_tap, sandbox_config, unreachable_config

SUMMARY = ("billing_usage_summary",)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| WARNING" in line]


def test_a_start_date_in_the_future_is_a_warning_that_names_it(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, start_date="2099-01-01"), streams=SESSIONS)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert run.records == []
    [line] = [w for w in warnings(run.stderr) if "start_date" in w]
    assert "`start_date` (2099-01-01) is in the future" in line


def test_a_partition_entry_of_another_shape_is_named_and_not_carried_on(sandbox, tmp_path):
    junk = {
        "context": {"account": "x"},
        "replication_key": "updated_at",
        "replication_key_value": "2024-01-01T00:00:00Z",
    }
    state = {"bookmarks": {"billing_sessions": {"partitions": [junk]}}}
    run = run_tap(tmp_path, sandbox_config(sandbox), state=state, streams=SESSIONS)
    assert run.exit_code == 0, run.stderr[-2000:]
    [line] = [w for w in warnings(run.stderr) if "State of stream billing_sessions" in w]
    assert "dropped 1 partition entry" in line
    assert '"account": "x"' in line
    contexts = [
        p["context"] for p in run.final_state["bookmarks"]["billing_sessions"]["partitions"]
    ]
    assert {"account": "x"} not in contexts
    assert {"botId": sandbox.bot_ids[0]} in contexts


def test_usage_summary_windows_are_numbered_per_app(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, window_days=30), streams=SUMMARY)
    assert run.exit_code == 0, run.stderr[-2000:]
    numbers: dict[str, list[tuple[int, int]]] = {}
    for match in re.finditer(r"Usage summary partition (\S+) window (\d+)/(\d+)", run.stderr):
        numbers.setdefault(match.group(1), []).append((int(match.group(2)), int(match.group(3))))
    assert len(numbers) == len(sandbox.bot_ids)
    for seen in numbers.values():
        total = seen[0][1]
        assert sorted(seen) == [(i, total) for i in range(1, total + 1)]


def test_counts_in_the_last_line_agree_with_their_nouns(sandbox, tmp_path):
    # One app, one day: one request, one job, one partition.
    config = sandbox_config(
        sandbox,
        bot_ids=sandbox.bot_ids[:1],
        start_date="2024-03-01T00:00:00Z",
        end_date="2024-03-01T12:00:00Z",
    )
    run = run_tap(tmp_path, config)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert "1 requests" not in run.stderr
    assert "1 partitions" not in run.stderr
    assert re.search(
        r"Stream billing_sessions done: \d+ records?, 1 request, 0 retries", run.stderr
    )
    assert "1 job with" in run.stderr
    assert "for 1 partition in" in run.stderr


def test_a_retry_line_names_the_host_and_what_failed(tmp_path):
    config = {**unreachable_config(), "retry_attempts": 2}
    port = config["api_url"].rsplit(":", 1)[1]
    run = run_tap(tmp_path, config, streams=SESSIONS)
    assert run.exit_code == 1
    [retry] = [w for w in warnings(run.stderr) if "Retrying in" in w]
    assert f"after connection refused by 127.0.0.1:{port}, a ConnectionError" in retry
    assert f"connection refused by 127.0.0.1:{port} (ConnectionError)" in run.stderr


def test_a_failed_connection_test_leaves_no_file_open(tmp_path):
    """Meltano passes a catalog file; a failed --test used to end with a ResourceWarning."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "api_url": f"http://127.0.0.1:{port}",
        "auth_token": "not-a-real-token",
        "bot_ids": ["st-test"],
        "start_date": "2024-01-01",
        "retry_attempts": 1,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog_selecting(SESSIONS)))
    command = [sys.executable, "-m", "tap_kore_billing", "--config", str(tmp_path / "config.json")]
    command += ["--catalog", str(tmp_path / "catalog.json"), "--test"]
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert "request failed after 1 try:" in done.stderr
    assert "ResourceWarning" not in done.stderr

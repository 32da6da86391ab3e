"""What an operator reads: a start_date in the future, a state entry the tap did not write,
windows numbered per partition, retries that name the host, counts in agreeing words."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

from helpers import (
    SESSIONS,
    START,
    catalog_selecting,
    dt,
    run_tap,
    sandbox_config,
    unreachable_config,
)

from tap_kore_billing.sandbox import Sandbox

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
    run = run_tap(
        tmp_path, sandbox_config(sandbox, window_days=30), streams=SUMMARY, log_level="DEBUG"
    )
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
    assert "request failed after 1 try in 0 s:" in done.stderr
    assert "ResourceWarning" not in done.stderr


def info_lines(stderr: str) -> list[str]:
    """The tap's own INFO lines (the SDK's METRIC lines aside)."""
    return [line for line in stderr.splitlines() if "| INFO" in line and "METRIC" not in line]


def test_info_says_once_per_app_and_stream_what_happened_however_many_windows(tmp_path):
    """A first run of three apps over five months: as many INFO lines with windows of a week as
    with windows of 60 days; each app named once per billing stream; the emulator's designed
    data draws no warning."""
    end = "2024-06-01T00:00:00Z"
    with Sandbox(seed=61, apps=3, sessions=600, start=dt(START), end=dt(end)) as sb:
        config = sandbox_config(sb, end_date=end)
        weekly = run_tap(tmp_path, {**config, "window_days": 7})
        bimonthly = run_tap(tmp_path, {**config, "window_days": 60})
    for run in (weekly, bimonthly):
        assert run.exit_code == 0, run.stderr[-2000:]
        assert warnings(run.stderr) == []
        for app in sb.bot_ids:
            for stream in ("billing_sessions", "billing_usage_summary"):
                said = [
                    line
                    for line in info_lines(run.stderr)
                    if f"Stream {stream}, partition botId={app}:" in line
                ]
                assert len(said) == 1, said
    assert len(info_lines(weekly.stderr)) == len(info_lines(bimonthly.stderr)), info_lines(
        weekly.stderr
    )
    [line] = [
        x
        for x in info_lines(weekly.stderr)
        if f"billing_sessions, partition botId={sb.bot_ids[0]}" in x
    ]
    assert " in 22 windows; read 2023-12-31T00:00:00Z..2024-06-01T00:00:00Z (bookmark none)" in line
    assert re.search(r"Stream apps done: 3 apps\b", weekly.stderr)


def test_the_window_lines_are_there_at_debug(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox), streams=SESSIONS, log_level="DEBUG")
    assert run.exit_code == 0, run.stderr[-2000:]
    assert re.search(r"\| DEBUG .*Partition botId=\S+ window 1/\d+ ", run.stderr)


def test_discovery_needs_no_setting_at_all(tmp_path):
    """`meltano select --list` runs discovery before a user has set any credential."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", "--discover"],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("TAP_KORE_BILLING_")},
    )
    assert done.returncode == 0, done.stderr
    streams = [s["tap_stream_id"] for s in json.loads(done.stdout)["streams"]]
    assert streams == ["billing_sessions", "billing_usage_summary", "apps", "app_links"]
    assert "WARNING" not in done.stderr
    assert "ERROR" not in done.stderr
    assert "Settings in effect" not in done.stderr


def test_an_unreachable_host_fails_a_sync_within_seconds_in_words_that_agree(tmp_path):
    # The default retry settings, as a user with a mistyped api_url has them.
    config = {
        key: value for key, value in unreachable_config().items() if key != "retry_initial_delay"
    }
    run = run_tap(tmp_path, config, streams=SESSIONS)
    assert run.exit_code == 1
    retries = [w for w in warnings(run.stderr) if "Retrying in" in w]
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, errors
    said = re.search(r"request failed after (\d+) tries in (\d+) s", errors[0])
    assert said, errors[0]
    tries, seconds = int(said.group(1)), int(said.group(2))
    # Retried more than once, given up by time: not the 8 tries of retry_attempts.
    assert 2 < tries < 8
    assert 10 <= seconds <= 20
    assert len(retries) == tries - 1
    for number, line in enumerate(retries, start=2):
        assert f"(try {number} next; a host that answers nothing is given up 10 s after its" in line
    assert "of 8" not in run.stderr

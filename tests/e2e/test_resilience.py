"""Faults and throttling: complete, duplicate-free data afterwards, or a clear error."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

import pytest
from helpers import run_tap, sandbox_config
from test_sync import assert_exactly_once

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
JAN = datetime(2024, 1, 1, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
# Sessions that start just before the emulator's data end finish after it.
AFTER_MAY = "2024-05-02T00:00:00Z"


def faulty_sandbox(max_page_size=40, **faults):
    return Sandbox(
        seed=9,
        apps=2,
        sessions=1200,
        start=JAN,
        end=MAY,
        max_page_size=max_page_size,
        fault_seed=3,
        **faults,
    )


def config_for(sb, **overrides):
    return sandbox_config(
        sb, end_date=AFTER_MAY, request_timeout=1, retry_initial_delay=0.01, **overrides
    )


@pytest.mark.parametrize(
    ("knobs", "fault"),
    [
        ({"error_rate": 0.3}, "error"),
        ({"drop_rate": 0.3}, "drop"),
        ({"truncate_rate": 0.3}, "truncate"),
        ({"slow_rate": 0.2, "slow_seconds": 1.5}, "slow"),
    ],
)
def test_each_fault_alone_is_retried_to_complete_data(tmp_path, knobs, fault):
    with faulty_sandbox(**knobs) as sb:
        run = run_tap(tmp_path, config_for(sb))
        assert run.exit_code == 0, run.stderr
        assert sb.stats()["faults"][fault] > 0
        assert_exactly_once(run, sb.expected())
        assert "Retrying" in run.stderr


def test_all_faults_together_at_five_percent_each(tmp_path):
    # Small pages make ~150 requests, so each 5% fault shows up (all four are asserted).
    with faulty_sandbox(
        max_page_size=10,
        error_rate=0.05,
        drop_rate=0.05,
        truncate_rate=0.05,
        slow_rate=0.05,
        slow_seconds=1.5,
    ) as sb:
        run = run_tap(tmp_path, config_for(sb, window_days=7))
        assert run.exit_code == 0, run.stderr
        stats = sb.stats()
        assert all(count > 0 for count in stats["faults"].values()), stats["faults"]
        assert_exactly_once(run, sb.expected())


def test_a_server_that_keeps_failing_ends_the_run_with_where_and_why(tmp_path):
    with faulty_sandbox(error_rate=1.0) as sb:
        # Without linked apps the first requests are pages of windows.
        run = run_tap(tmp_path, config_for(sb, retry_attempts=3, include_linked_apps=False))
        assert run.exit_code == 1
        assert "Traceback" not in run.stderr
        last = run.stderr.strip().splitlines()[-1]
        for fragment in ("after 3 tries", "window 2023-12-31T00:00:00Z..", "skip 0", "HTTP 50"):
            assert fragment in last, last
        # Apps are fetched in parallel: whichever failed first is named.
        assert any(f"partition botId={bot}," in last for bot in sb.bot_ids), last
        # Nothing was fetched, so no bookmark may exist.
        assert not any(
            "partitions" in s["bookmarks"].get("billing_sessions", {}) for s in run.states
        )


def test_limits_at_the_servers_quota_avoid_429_and_above_it_still_complete(tmp_path):
    """Two runs side by side, each needing more calls than one minute allows (about 65 s)."""
    results = {}

    def one_run(name, tap_limit):
        with Sandbox(
            seed=12,
            apps=1,
            sessions=400,
            start=JAN,
            end=MAY,
            max_page_size=20,
            rate_per_minute=20,
        ) as sb:
            config = config_for(sb, requests_per_minute=tap_limit, requests_per_hour=100_000)
            # The sessions stream alone: its request count is what the quota is sized for.
            run = run_tap(tmp_path / name, config, streams=("billing_sessions",))
            results[name] = (run, sb.stats(), sb.expected())

    (tmp_path / "at").mkdir()
    (tmp_path / "above").mkdir()
    threads = [
        threading.Thread(target=one_run, args=("at", 20)),
        threading.Thread(target=one_run, args=("above", 1000)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    at_run, at_stats, expected = results["at"]
    assert at_run.exit_code == 0, at_run.stderr
    assert at_stats["requests"] > 20
    assert at_stats["throttled"] == 0
    assert_exactly_once(at_run, expected)

    above_run, above_stats, expected = results["above"]
    assert above_run.exit_code == 0, above_run.stderr
    assert above_stats["throttled"] > 0
    assert_exactly_once(above_run, expected)
    # Each Retry-After (whole seconds from the emulator) is waited exactly: no jitter on top,
    # never shortened.
    waits = re.findall(r"Retrying in ([\d.]+) s after HTTP 429", above_run.stderr)
    assert waits
    assert all(float(wait) == int(float(wait)) >= 1 for wait in waits)

"""How the tap spreads its requests over quota holders, seen from an emulator with latency."""

from __future__ import annotations

import collections
from datetime import datetime
from typing import Any

from helpers import run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

JAN = datetime.fromisoformat("2024-01-01T00:00:00+00:00")
MAR = datetime.fromisoformat("2024-03-01T00:00:00+00:00")
APPS = 12


def remote_sandbox(**knobs: Any) -> Sandbox:
    """Twelve apps, a few 10-row pages each, answered in about 100 ms like a remote API."""
    return Sandbox(
        seed=17,
        apps=APPS,
        sessions=APPS * 40,
        start=JAN,
        end=MAR,
        max_page_size=10,
        latency_seconds=0.1,
        latency_jitter=0.2,
        **knobs,
    )


def config_for(sb: Sandbox, **overrides: object) -> dict:
    # The billing scheduler's requests alone (the links lookups come first, all at once).
    return sandbox_config(
        sb,
        end_date="2024-03-02T00:00:00Z",
        page_size=10,
        include_linked_apps=False,
        **overrides,
    )


def assert_each_session_once(run, sb: Sandbox) -> None:
    assert run.exit_code == 0, run.stderr[-3000:]
    counts = collections.Counter(run.ids)
    assert max(counts.values()) == 1
    assert set(counts) == {s["billingSessionId"] for s in sb.expected()}


def test_every_app_starts_at_once_and_apps_take_turns(tmp_path):
    # The default quota (60 a minute) is far from binding here; the order is the scheduler's.
    with remote_sandbox(rate_per_minute=60, rate_per_hour=1800) as sb:
        run = run_tap(
            tmp_path,
            config_for(sb, requests_per_minute=60, requests_per_hour=1800),
            streams=("billing_sessions",),
        )
        assert_each_session_once(run, sb)
        stats, arrivals = sb.stats(), sb.arrivals()
    assert stats["throttled"] == 0
    assert sorted(arrivals) == sorted(sb.bot_ids)
    assert min(len(times) for times in arrivals.values()) >= 4
    # Served in turn: no app makes its third request before every app has made its first
    # (a worker that kept its app until done would send all of its requests first).
    last_first = max(times[0] for times in arrivals.values())
    first_third = min(times[2] for times in arrivals.values())
    assert last_first < first_third
    # Every app's quota has room at the start: every app has a request in flight at once.
    assert stats["max_in_flight"] == APPS
    assert "sets the pace now" not in run.stderr  # the default bound is above 12 apps


def test_max_workers_bounds_the_requests_in_flight_and_says_when_it_sets_the_pace(tmp_path):
    with remote_sandbox() as sb:
        # Quotas that allow far more than the latency: one request in flight per app.
        run = run_tap(tmp_path, config_for(sb), streams=("billing_sessions",))
        assert_each_session_once(run, sb)
        stats = sb.stats()
        sb.reset_stats()
        lowered = run_tap(tmp_path, config_for(sb, max_workers=2), streams=("billing_sessions",))
        assert_each_session_once(lowered, sb)
        lowered_stats = sb.stats()
    assert stats["max_in_flight"] == APPS
    # One keep-alive connection per worker, reused for every request it sends.
    assert stats["connections"] <= APPS < stats["requests"] // 3
    assert "at most 12 requests in flight (bound 12)" in run.stderr
    assert "sets the pace now" not in run.stderr
    # max_workers is an upper bound the user may lower; with 12 apps whose quotas have room
    # and 100 ms a request, the apps wait for one of its 2 slots, and the run says so once.
    assert lowered_stats["max_in_flight"] <= 2
    assert lowered_stats["connections"] <= 2
    bound_lines = [line for line in lowered.stderr.splitlines() if "sets the pace now" in line]
    assert len(bound_lines) == 1, lowered.stderr[-3000:]
    assert "max_workers (2) sets the pace now, not the API quotas" in bound_lines[0]
    assert "raise max_workers" in bound_lines[0]

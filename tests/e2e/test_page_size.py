"""Page size negotiated with the server: large pages where they are accepted, the documented
100 after one wasted request where they are not, nothing lost or repeated either way."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from helpers import SESSIONS, run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc


def _sandbox(**knobs):
    sb = Sandbox(
        seed=51,
        apps=3,
        sessions=3000,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        max_page_size=1000,
    )
    sb.configure(**knobs)
    return sb


END = datetime(2024, 3, 1, tzinfo=UTC)


def _expected(sb) -> set[str]:
    return {s["billingSessionId"] for s in sb.expected() if s["end"] <= END}


def _pages(sb, size: int) -> int:
    """Requests for every app's one window at `size` rows a page: the last page is the first
    one short of `size` (moreAvailable false), an empty one when the rows fill every page."""
    per_app = Counter(s["botId"] for s in sb.expected() if s["end"] <= END)
    return sum(rows // size + 1 for rows in per_app.values())


def _config(sb, **overrides):
    # No links lookups: the emulator's request count is the billing pages alone.
    config = sandbox_config(
        sb,
        end_date="2024-03-01T00:00:00Z",
        window_days=90,
        max_workers=3,
        include_linked_apps=False,
    )
    config.pop("page_size")  # the default
    config.update(overrides)
    return config


def test_a_server_that_accepts_large_pages_is_asked_for_them(tmp_path):
    with _sandbox() as sb:
        run = run_tap(tmp_path, _config(sb), streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        assert len(run.ids) == len(set(run.ids))
        assert set(run.ids) == _expected(sb)
        # About 1,000 sessions per app, one window: one or two requests each.
        assert sb.stats()["requests"] == _pages(sb, 1000)
        assert "answered page_size" not in run.stderr


@pytest.mark.parametrize(("policy", "status"), [("reject", "HTTP 400"), ("fail", "HTTP 500")])
def test_a_server_that_refuses_large_pages_costs_one_request(tmp_path, policy, status):
    with _sandbox(max_page_size=100, oversized_limit=policy, error_rate=0.0) as sb:
        run = run_tap(tmp_path, _config(sb), streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        ids = run.ids
        assert len(ids) == len(set(ids))
        assert set(ids) == _expected(sb)
        stats = sb.stats()
        refused = stats["by_status"].get("400" if policy == "reject" else "500", 0)
        assert refused == 1, stats
        warnings = [line for line in run.stderr.splitlines() if "answered page_size 1000" in line]
        assert len(warnings) == 1
        assert status in warnings[0]
        assert "using 100" in warnings[0]
        # The one refused request, then every page at 100 rows.
        assert stats["requests"] == 1 + _pages(sb, 100)


def test_a_400_about_something_else_is_still_an_error(tmp_path):
    with _sandbox(max_range_days=7) as sb:
        run = run_tap(tmp_path, _config(sb), streams=SESSIONS)
        assert run.exit_code == 1
        assert "HTTP 400" in run.stderr
        assert "answered page_size" not in run.stderr


def test_a_throttled_first_request_still_settles_the_page_size(tmp_path):
    # Another integration has spent the quota: the probe is throttled (429) and waits, then
    # learns that the server refuses large pages, instead of failing on them.
    with _sandbox(max_page_size=100, oversized_limit="reject", throttle_next=1) as sb:
        run = run_tap(tmp_path, _config(sb), streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        assert "Retrying in 1.00 s after HTTP 429" in run.stderr
        refused = [line for line in run.stderr.splitlines() if "answered page_size 1000" in line]
        assert len(refused) == 1
        assert sb.stats()["by_status"]["400"] == 1
        assert set(run.ids) == _expected(sb)

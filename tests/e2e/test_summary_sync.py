"""billing_usage_summary end to end: the console script against the emulator over real HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from helpers import run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.summary_report import TYPE_COUNTERS, requests_of

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 4, 1, tzinfo=UTC)
STREAM = "billing_usage_summary"
ONLY = (STREAM,)
COUNTERS = (
    "requests",
    "sessions",
    "conversations",
    "alert_notifications",
    "proactive_notifications",
)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(
        seed=11, apps=3, sessions=900, late=30, start=START, end=END, summary={"summary_polls": 3}
    ) as sandbox:
        yield sandbox


def config(sb: Sandbox, **overrides: object) -> dict:
    """Bounded to the emulator's data (three months: two jobs per app with daily periods)."""
    settings: dict[str, object] = {
        "end_date": "2024-03-31T23:00:00Z",
        "summary_timeout_seconds": 5,
        "retry_attempts": 3,
    }
    return sandbox_config(sb, **{**settings, **overrides})


def floor(value: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def expected(sb: Sandbox, granularity: str = "day", bots: list[str] | None = None) -> dict:
    """(botId, periodStart) -> counters, from the emulator's visible sessions by UTC start."""
    with sb._lock:
        sessions = list(sb._data.visible)
    out: dict[tuple[str, str], Counter] = {}
    for session in sessions:
        if bots is not None and session.bot_id not in bots:
            continue
        start = datetime.fromtimestamp(session.start, UTC)
        if not START <= start < END:
            continue
        key = (session.bot_id, floor(start, granularity).isoformat())
        cell = out.setdefault(key, Counter())
        cell["requests"] += requests_of(session)
        cell[TYPE_COUNTERS[session.type]] += 1
    return out


def assert_matches(records: list[dict], want: dict, granularity: str = "day") -> None:
    got = {(r["botId"], r["periodStart"]): r for r in records}
    assert len(got) == len(records), "a key was emitted twice in one run"
    assert all(r["granularity"] == granularity for r in records)
    for key, counts in want.items():
        assert key in got, key
        for name in COUNTERS:
            assert got[key][name] == counts[name], (key, name, got[key][name], counts[name])
    # Every other period is a zero bucket.
    for key in set(got) - set(want):
        assert all(got[key][name] == 0 for name in COUNTERS), got[key]


def test_bot_scope_counts_match_per_app_day_with_zero_days_and_jobs_in_progress(tmp_path, sb):
    run = run_tap(tmp_path, config(sb), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    assert_matches(run.summary, expected(sb))
    # Every day of the range for every app, zero days included.
    assert len(run.summary) == 3 * 91
    stats = sb.summary_stats()
    # Two 90-day jobs per app; each stayed IN_PROGRESS for three status checks.
    assert stats["posts"] == 6
    assert stats["gets"] == 6 * 4
    assert all(holder["POST"] == 2 for holder in stats["by_holder"].values())


@pytest.mark.parametrize("admin_path", ["plain", "bots"])
def test_admin_scope_with_bot_ids_on_either_path(tmp_path, sb, admin_path):
    sb.configure(summary_admin_path=admin_path)
    chosen = sb.bot_ids[:2]
    run = run_tap(tmp_path, config(sb, api_scope="admin", bot_ids=chosen), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    assert {r["botId"] for r in run.summary} == set(chosen)
    assert_matches(run.summary, expected(sb, bots=chosen))
    fell_back = "trying the older account-wide path" in run.stderr
    assert fell_back is (admin_path == "plain")
    assert run.bookmarks(STREAM) == {f"botId={bot}": "2024-03-31T00:00:00+00:00" for bot in chosen}
    # One job per window for both apps (streamIds), not one per app.
    assert sb.summary_stats()["posts"] == 2


def test_admin_scope_apps_with_different_bookmarks_share_jobs(tmp_path, sb):
    sb.configure(summary_admin_path="both")
    known, new = sb.bot_ids[:2]
    state = {
        "bookmarks": {
            STREAM: {
                "partitions": [
                    {
                        "context": {"botId": known},
                        "replication_key": "periodStart",
                        "replication_key_value": "2024-03-20T00:00:00+00:00",
                    }
                ]
            }
        }
    }
    run = run_tap(
        tmp_path, config(sb, api_scope="admin", bot_ids=[known, new]), state=state, streams=ONLY
    )
    assert run.exit_code == 0, run.stderr
    # The new app needs everything; the known app is asked again, which upserts harmlessly.
    assert_matches(run.summary, expected(sb, bots=[known, new]))
    assert sb.summary_stats()["posts"] == 2
    assert run.bookmarks(STREAM) == {
        f"botId={known}": "2024-03-31T00:00:00+00:00",
        f"botId={new}": "2024-03-31T00:00:00+00:00",
    }


def test_admin_scope_whole_account(tmp_path, sb):
    sb.configure(summary_admin_path="both")
    run = run_tap(tmp_path, config(sb, api_scope="admin", bot_ids=None), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    assert_matches(run.summary, expected(sb))
    assert set(run.bookmarks(STREAM)) == {"botId=*"}
    assert sb.summary_stats()["posts"] == 2


def test_another_clients_job_is_never_read_as_ours(tmp_path, sb):
    sb.configure(summary_foreign_polls=2, summary_polls=1)
    run = run_tap(tmp_path, config(sb), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    assert_matches(run.summary, expected(sb))
    assert "not ours" in run.stderr


@pytest.mark.parametrize("granularity", ["hour", "month"])
def test_hour_and_month_periods(tmp_path, sb, granularity):
    bot = sb.bot_ids[0]
    run = run_tap(
        tmp_path,
        config(sb, summary_granularity=granularity, bot_ids=[bot]),
        streams=ONLY,
    )
    assert run.exit_code == 0, run.stderr
    want = expected(sb, granularity, bots=[bot])
    assert_matches(run.summary, want, granularity)
    if granularity == "hour":
        # Empty hours are skipped by the API: only hours with sessions come back.
        assert len(run.summary) == len(want)
    else:
        assert [r["periodStart"][:10] for r in run.summary] == [
            "2024-01-01",
            "2024-02-01",
            "2024-03-01",
        ]
        # Whole months: two months per job.
        assert sb.summary_stats()["posts"] == 2


def test_incremental_state_per_partition_and_late_sessions_in_the_lookback(tmp_path, sb):
    first = run_tap(tmp_path, config(sb), streams=ONLY)
    assert first.exit_code == 0, first.stderr
    backfill = sb.summary_stats()
    # The bookmark is the newest period that has ended: Mar 31 is cut by end_date 23:00 and
    # its bucket is asked for whole, up to Apr 1, so it ended.
    assert first.bookmarks(STREAM) == {
        f"botId={bot}": "2024-03-31T00:00:00+00:00" for bot in sb.bot_ids
    }
    assert sb.reveal() == 30
    sb.reset_stats()
    second = run_tap(tmp_path, config(sb), state=first.final_state, streams=ONLY)
    assert second.exit_code == 0, second.stderr
    incremental = sb.summary_stats()
    # Three lookback days before the bookmark, one job per app.
    days = sorted({r["periodStart"][:10] for r in second.summary})
    assert days == ["2024-03-28", "2024-03-29", "2024-03-30", "2024-03-31"]
    want = {k: v for k, v in expected(sb).items() if k[1][:10] in days}
    assert_matches(second.summary, want)
    late = {k for k, v in want.items() if v != expected_before(first, k)}
    assert late, "the late sessions changed no period"
    assert incremental["posts"] == 3
    assert backfill["posts"] == 6
    print(f"\nbackfill: {backfill['posts']} POST, {backfill['gets']} GET; ")
    print(f"incremental: {incremental['posts']} POST, {incremental['gets']} GET")
    assert second.bookmarks(STREAM) == first.bookmarks(STREAM)


def expected_before(run, key) -> Counter:
    for record in run.summary:
        if (record["botId"], record["periodStart"]) == key:
            return Counter({name: record[name] for name in COUNTERS if record[name]})
    return Counter()


def test_open_periods_are_emitted_but_never_bookmarked(tmp_path):
    now = datetime.now(UTC)
    with Sandbox(seed=2, apps=1, sessions=50, start=now - timedelta(days=5), end=now) as sb:
        run = run_tap(
            tmp_path,
            sandbox_config(sb, start_date=(now - timedelta(days=5)).isoformat()),
            streams=ONLY,
        )
    assert run.exit_code == 0, run.stderr
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert run.summary[-1]["periodStart"] == today.isoformat()
    bookmark = next(iter(run.bookmarks(STREAM).values()))
    assert bookmark == (today - timedelta(days=1)).isoformat()


def test_timeout_names_app_and_range_and_keeps_the_state_already_emitted(tmp_path, sb):
    bot = sb.bot_ids[0]
    # The first job finishes, the second never does.
    sb.configure(summary_hang=True, summary_trouble_after=1)
    run = run_tap(
        tmp_path,
        config(sb, bot_ids=[bot], summary_timeout_seconds=1, summary_poll_seconds=0.05),
        streams=ONLY,
    )
    assert run.exit_code != 0
    last = run.stderr.strip().splitlines()[-1]
    for fragment in (
        "usage summary job timed out",
        f"partition botId={bot}",
        "window 2024-03-31T00:00:00Z..2024-04-01T00:00:00Z",
        "IN_PROGRESS",
        "after 1 s",
    ):
        assert fragment in last, last
    # The first window's periods and bookmark were emitted before the failure, and stand.
    assert len(run.summary) == 90
    assert run.bookmarks(STREAM) == {f"botId={bot}": "2024-03-30T00:00:00+00:00"}
    gets = sb.summary_stats()["gets"]
    # Polite polling: 50 ms growing by half, within one second: a handful of checks.
    assert gets <= 4 + 12, gets


def test_failed_job_ends_the_run_with_one_line(tmp_path, sb):
    sb.configure(summary_fail=True)
    bot = sb.bot_ids[1]
    run = run_tap(tmp_path, config(sb, bot_ids=[bot]), streams=ONLY)
    assert run.exit_code == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "usage summary job failed" in last, last
    assert f"partition botId={bot}, window 2024-01-01T00:00:00Z..2024-03-31T00:00:00Z" in last
    assert "FAILED" in last
    assert not run.summary
    assert not run.bookmarks(STREAM) if run.states else True


def test_throttled_status_checks_are_retried(tmp_path, sb):
    sb.configure(summary_throttle_polls=1, retry_after=False)
    run = run_tap(tmp_path, config(sb), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    assert_matches(run.summary, expected(sb))
    assert sb.stats()["by_status"]["429"] == 6
    assert "HTTP 429" in run.stderr


def test_both_streams_run_by_default(tmp_path, sb):
    run = run_tap(tmp_path, config(sb, bot_ids=sb.bot_ids[:1]))
    assert run.exit_code == 0, run.stderr
    assert run.records
    assert run.summary
    bookmarked = {name for name, entry in run.final_state["bookmarks"].items() if entry}
    assert bookmarked == {"billing_sessions", STREAM}
    assert run.stream_records("apps")  # the inventory streams run too, with no bookmark


def test_the_stream_ends_with_one_line_of_what_it_cost(sb, tmp_path):
    # Without the links lookups, every request the emulator counts is the stream's.
    run = run_tap(tmp_path, config(sb, include_linked_apps=False), streams=ONLY)
    assert run.exit_code == 0, run.stderr
    [line] = [line for line in run.stderr.splitlines() if f"Stream {STREAM} done:" in line]
    stats = sb.stats()
    assert f"{len(run.summary)} records, {stats['requests']} requests, 0 retries" in line
    assert "jobs with" in line

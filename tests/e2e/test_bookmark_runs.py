"""Bookmarks follow what the API has shown, run after run: late publications, idle apps, lags
and stalls, old states, apps added later."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from helpers import SESSIONS, run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
KEY = "billingSessionEndDateTime"


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("filter_field", ["start", "end"])
def test_sessions_published_days_late_are_picked_up_by_the_next_run(tmp_path, filter_field):
    # The API shows a session two days after it ends, and a fifth of them a day later still.
    with Sandbox(
        seed=31,
        apps=2,
        sessions=3000,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        max_page_size=50,
        filter_field=filter_field,
    ) as sb:
        sb.configure(
            publication_delay_hours=48,
            late_fraction=0.2,
            late_delay_hours=24,
            clock="2024-02-10T00:00:00Z",
        )
        # end_date stands for the moment of each run, so the tap's clock matches the API's.
        config = sandbox_config(sb, lookback_hours=48, end_date="2024-02-10T00:00:00Z")
        first = run_tap(tmp_path, config, streams=SESSIONS)
        assert first.exit_code == 0, first.stderr
        shown_first = {s["billingSessionId"] for s in sb.published_expected()}
        assert set(first.ids) == shown_first

        # Five days later: the late ones of the first run are published now.
        sb.configure(clock="2024-02-15T00:00:00Z")
        shown_second = {s["billingSessionId"] for s in sb.published_expected()}
        newest = max(s["end"] for s in sb.expected() if s["billingSessionId"] in shown_first)
        published_late = {
            s["billingSessionId"]
            for s in sb.expected()
            if s["billingSessionId"] in shown_second - shown_first and s["end"] <= newest
        }
        assert len(published_late) >= 5
        config["end_date"] = "2024-02-15T00:00:00Z"
        second = run_tap(tmp_path, config, state=first.final_state, streams=SESSIONS)
        assert second.exit_code == 0, second.stderr
        assert published_late <= set(second.ids)
        assert set(first.ids) | set(second.ids) == shown_second
        # The second run re-reads days, not the whole history.
        assert len(second.ids) < len(first.ids) / 2


def test_an_idle_app_next_to_busy_ones_costs_two_requests_per_run(tmp_path):
    # The third app went quiet in January; the others have sessions up to an hour ago.
    with Sandbox(seed=32, apps=3, idle_apps=1, sessions=900, max_page_size=50) as sb:
        idle = sb.bot_ids[2]
        assert max(s["end"] for s in sb.expected(bot_id=idle)) < sb.data_end - timedelta(days=60)
        config = sandbox_config(sb, start_date=sb.data_start.isoformat())
        first = run_tap(tmp_path, config, streams=SESSIONS)
        assert first.exit_code == 0, first.stderr
        sb.reset_stats()
        second = run_tap(tmp_path, config, state=first.final_state, streams=SESSIONS)
        assert second.exit_code == 0, second.stderr
        # Its links (include_linked_apps), one request around its last session, one for the
        # recent lookback: not its months of silence.
        assert sb.stats()["by_holder"][idle] == 3
        assert len(second.ids) < len(first.ids) / 4


@pytest.mark.parametrize(("delay_hours", "lookback_hours"), [(72, 24), (48, 1)])
def test_publication_that_lags_or_stalls_leaves_no_gap(tmp_path, delay_hours, lookback_hours):
    """Runs every day while the API shows sessions days late (longer than the lookback)."""
    with Sandbox(
        seed=35,
        apps=1,
        sessions=2000,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 2, 1, tzinfo=UTC),
        max_page_size=100,
        filter_field="end",
    ) as sb:
        sb.configure(publication_delay_hours=delay_hours)
        config = sandbox_config(sb, lookback_hours=lookback_hours)
        state = None
        seen: set[str] = set()
        for day in range(10, 16):
            clock = f"2024-01-{day:02d}T00:00:00Z"
            sb.configure(clock=clock)
            run = run_tap(tmp_path, {**config, "end_date": clock}, state=state, streams=SESSIONS)
            assert run.exit_code == 0, run.stderr
            seen |= set(run.ids)
            state = run.final_state
        shown = {s["billingSessionId"] for s in sb.published_expected()}
        assert shown - seen == set()


def test_a_state_written_by_the_previous_release_needs_no_backfill_and_leaves_no_gap(tmp_path):
    with Sandbox(
        seed=33,
        apps=2,
        sessions=800,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        max_page_size=50,
    ) as sb:
        old_bookmark = "2024-02-01T00:00:00+00:00"
        old_state = {
            "bookmarks": {
                "billing_sessions": {
                    "partitions": [
                        {
                            "context": {"botId": bot},
                            "replication_key": KEY,
                            "replication_key_value": old_bookmark,
                        }
                        for bot in sb.bot_ids
                    ]
                }
            }
        }
        run = run_tap(tmp_path, sandbox_config(sb), state=old_state, streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        floor = _dt(old_bookmark) - timedelta(hours=24)
        expected = {s["billingSessionId"] for s in sb.expected() if s["end"] >= floor}
        assert expected <= set(run.ids)
        too_old = _dt(old_bookmark) - timedelta(hours=24) - timedelta(hours=1)
        assert all(_dt(r[KEY]) >= too_old for r in run.records)
        # The new state knows the newest session each app has shown.
        for bot, value in run.bookmarks().items():
            app = bot.removeprefix("botId=")
            assert _dt(value) == max(s["end"] for s in sb.expected(bot_id=app))


def test_an_app_added_later_starts_at_start_date_not_at_an_inherited_bookmark(tmp_path):
    with Sandbox(seed=36, apps=2, sessions=600, max_page_size=100) as sb:
        first_app, added_app = sb.bot_ids
        start = sb.data_start.isoformat()
        # A stream-level bookmark from another tool: the starting point of the first run only.
        other_tool = {
            "bookmarks": {
                "billing_sessions": {
                    "replication_key": KEY,
                    "replication_key_value": (sb.data_end - timedelta(days=5)).isoformat(),
                }
            }
        }
        one = run_tap(
            tmp_path,
            sandbox_config(sb, bot_ids=[first_app], start_date=start),
            state=other_tool,
            streams=SESSIONS,
        )
        assert one.exit_code == 0, one.stderr
        assert "replication_key_value" not in one.final_state["bookmarks"]["billing_sessions"]

        both = run_tap(
            tmp_path,
            sandbox_config(sb, start_date=start),
            state=one.final_state,
            streams=SESSIONS,
        )
        assert both.exit_code == 0, both.stderr
        added = {r["billingSessionId"] for r in both.records if r["botId"] == added_app}
        assert added == {s["billingSessionId"] for s in sb.expected(bot_id=added_app)}


def test_the_state_names_the_newest_session_after_windows_without_any(tmp_path):
    # start_date a month before the first session: the first window holds nothing.
    with Sandbox(
        seed=5,
        apps=2,
        sessions=600,
        start=datetime(2024, 2, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        max_page_size=100,
    ) as sb:
        config = sandbox_config(sb, start_date="2024-01-01T00:00:00Z", window_days=15)
        run = run_tap(tmp_path, config, streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        newest: dict[str, str] = {}
        for record in run.records:
            app = f"botId={record['botId']}"
            newest[app] = max(newest.get(app, ""), record[KEY])
        assert run.bookmarks() == newest
        entries = run.final_state["bookmarks"]["billing_sessions"]["partitions"]
        assert all("no_session_yet" not in entry for entry in entries)
        again = run_tap(tmp_path, config, state=run.final_state, streams=SESSIONS)
        assert again.exit_code == 0, again.stderr
        for app, end in newest.items():
            [line] = [x for x in again.stderr.splitlines() if f"partition {app}:" in x]
            assert f"(bookmark newest session shown {end}," in line


def test_a_first_run_that_sees_nothing_yet_marks_nothing_as_read(tmp_path):
    # A new deployment with start_date two days back and an API that publishes two days late:
    # the first run sees nothing; what is published after it must still be read.
    with Sandbox(
        seed=3,
        apps=2,
        sessions=3000,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 3, 1, tzinfo=UTC),
        max_page_size=100,
    ) as sb:
        sb.configure(publication_delay_hours=48)
        config = sandbox_config(sb, start_date="2024-02-17T06:00:00Z")
        state = None
        seen: set[str] = set()
        for clock in ("2024-02-19T00:00:00Z", "2024-02-22T00:00:00Z", "2024-02-26T00:00:00Z"):
            sb.configure(clock=clock)
            run = run_tap(tmp_path, {**config, "end_date": clock}, state=state, streams=SESSIONS)
            assert run.exit_code == 0, run.stderr
            seen |= set(run.ids)
            state = run.final_state
        shown = {
            s["billingSessionId"]
            for s in sb.published_expected()
            if s["end"] >= datetime(2024, 2, 17, 6, tzinfo=UTC)
        }
        assert shown
        assert shown - seen == set()

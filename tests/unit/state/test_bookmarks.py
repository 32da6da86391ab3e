"""A partition's bookmark, without a server: ranges to read, advancing, old and corrupt states."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tap_kore_billing.state.bookmarks import PartitionBookmark

KEY = "billingSessionEndDateTime"
DAY = timedelta(days=1)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_an_active_partition_reads_one_range_from_the_lookback_before_its_newest_session():
    bookmark = PartitionBookmark(
        newest_shown=_dt("2024-03-10T12:00:00+00:00"),
        checked_through=_dt("2024-03-12T12:00:00+00:00"),
        longest_session=timedelta(minutes=40),
    )
    ranges = bookmark.fetch_ranges(
        start_date=_dt("2024-01-01T00:00:00+00:00"),
        fetch_to=_dt("2024-03-12T13:00:00+00:00"),
        lookback=timedelta(hours=48),
    )
    # 48 h lookback plus an hour for an API that selects sessions by their start.
    assert ranges == [(_dt("2024-03-08T11:00:00+00:00"), _dt("2024-03-12T13:00:00+00:00"))]


def test_an_idle_partition_reads_around_its_last_session_and_the_recent_lookback_only():
    bookmark = PartitionBookmark(
        newest_shown=_dt("2024-01-05T00:00:00+00:00"),
        checked_through=_dt("2024-06-01T00:00:00+00:00"),
    )
    ranges = bookmark.fetch_ranges(
        start_date=_dt("2024-01-01T00:00:00+00:00"),
        fetch_to=_dt("2024-06-01T06:00:00+00:00"),
        lookback=timedelta(hours=24),
    )
    assert ranges == [
        (_dt("2024-01-03T23:00:00+00:00"), _dt("2024-01-06T01:00:00+00:00")),
        (_dt("2024-05-30T23:00:00+00:00"), _dt("2024-06-01T06:00:00+00:00")),
    ]


def test_a_state_from_the_previous_release_is_read_as_checked_through():
    old = {"replication_key": KEY, "replication_key_value": "2024-06-01T00:00:00+00:00"}
    bookmark = PartitionBookmark.from_state(old, KEY)
    assert bookmark == PartitionBookmark(checked_through=_dt("2024-06-01T00:00:00+00:00"))
    again = PartitionBookmark.from_state(bookmark.to_state(KEY), KEY)
    assert again.checked_through == bookmark.checked_through


def test_a_bookmark_that_has_seen_a_session_drops_the_no_session_yet_flag():
    entry = {"context": {"botId": "st-a"}}
    PartitionBookmark(checked_through=_dt("2024-01-31T00:00:00+00:00")).write_into(entry, KEY)
    assert entry["no_session_yet"] is True
    seen = PartitionBookmark(
        newest_shown=_dt("2024-02-20T10:00:00+00:00"),
        checked_through=_dt("2024-02-20T10:00:00+00:00"),
    )
    seen.write_into(entry, KEY)
    assert "no_session_yet" not in entry
    assert entry["context"] == {"botId": "st-a"}
    assert PartitionBookmark.from_state(entry, KEY) == seen


def test_bookmarks_never_move_back_nor_past_the_run_start():
    run_start = _dt("2024-06-01T00:00:00+00:00")
    bookmark = PartitionBookmark(
        newest_shown=_dt("2024-05-01T00:00:00+00:00"),
        checked_through=_dt("2024-05-20T00:00:00+00:00"),
    )
    older = bookmark.advanced(
        newest_end=_dt("2024-04-01T00:00:00+00:00"),
        longest=timedelta(0),
        read_through=_dt("2024-04-02T00:00:00+00:00"),
        run_started_at=run_start,
        frontier=None,
    )
    assert older == bookmark
    future = bookmark.advanced(
        newest_end=_dt("2024-07-01T00:00:00+00:00"),
        longest=timedelta(hours=2),
        read_through=_dt("2024-07-02T00:00:00+00:00"),
        run_started_at=run_start,
        frontier=None,
    )
    assert future.newest_shown == run_start
    assert future.checked_through == run_start
    assert future.longest_session == timedelta(hours=2)


def test_a_window_counts_as_checked_only_as_far_as_the_api_had_published():
    run_start = _dt("2024-06-10T00:00:00+00:00")
    empty = PartitionBookmark()
    # The API's newest session (of any app) ended on June 1st: a window read up to June 10th
    # is checked through June 1st only; what ends later may still be published.
    lagging = empty.advanced(
        newest_end=None,
        longest=timedelta(0),
        read_through=run_start,
        run_started_at=run_start,
        frontier=_dt("2024-06-01T00:00:00+00:00"),
    )
    assert lagging.checked_through == _dt("2024-06-01T00:00:00+00:00")
    # Nothing shown anywhere yet (the API may publish days late): nothing counts as read.
    nothing = empty.advanced(
        newest_end=None,
        longest=timedelta(0),
        read_through=run_start,
        run_started_at=run_start,
        frontier=None,
    )
    assert nothing.checked_through is None
    assert PartitionBookmark.from_state(lagging.to_state(KEY), KEY) == lagging


def test_a_corrupt_bookmark_is_refused():
    with pytest.raises(ValueError, match="not an ISO 8601"):
        PartitionBookmark.from_state(
            {"replication_key": KEY, "replication_key_value": "yesterday", "checked_through": "x"},
            KEY,
        )


# --- against the emulator -----------------------------------------------------------------------

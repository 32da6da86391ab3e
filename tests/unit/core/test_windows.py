"""Window arithmetic: contiguous, bounded by window_days and by three calendar months."""

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from tap_kore_billing.core.windows import add_months, plan_windows

UTC = timezone.utc


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2024, 11, 30), 3, datetime(2025, 2, 28)),
        (datetime(2023, 11, 30), 3, datetime(2024, 2, 29)),
        (datetime(2024, 1, 31), 1, datetime(2024, 2, 29)),
        (datetime(2024, 10, 15), 3, datetime(2025, 1, 15)),
    ],
)
def test_add_months_clamps_the_day(start, months, expected):
    assert add_months(start, months) == expected


def test_windows_cover_the_range_without_gaps():
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)
    end = datetime(2024, 4, 2, 17, 30, tzinfo=UTC)
    windows = plan_windows(start, end, 30)
    assert windows[0].start == start
    assert windows[-1].end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert all(w.end - w.start <= timedelta(days=30) for w in windows)
    assert len(windows) == 4


def test_ninety_day_windows_never_exceed_three_calendar_months():
    # Feb 1 + 90 days is May 2, past Feb 1 + 3 months (May 1): the API would answer 400.
    start = datetime(2023, 2, 1, tzinfo=UTC)
    windows = plan_windows(start, datetime(2024, 2, 1, tzinfo=UTC), 90)
    for window in windows:
        assert window.end <= add_months(window.start, 3)
    assert windows[0].end == datetime(2023, 5, 1, tzinfo=UTC)


def test_empty_or_inverted_range_has_no_windows():
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    assert plan_windows(moment, moment, 30) == []
    assert plan_windows(moment, moment - timedelta(days=1), 30) == []

"""The usage summary job's pure parts: buckets, windows, statuses, polling and result parsing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from tap_kore_billing.core.windows import Window
from tap_kore_billing.summary.report import (
    JobState,
    SummaryFormatError,
    bucket_ceiling,
    bucket_start,
    in_window,
    job_id,
    job_state,
    newest_ended_period,
    newest_per_app,
    only_apps,
    parse_result,
    plan_summary_windows,
    poll_delays,
    request_range,
)

UTC = timezone.utc


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("granularity", "value", "floor", "ceiling"),
    [
        ("hour", "2024-03-05T10:10:00Z", "2024-03-05T10:00:00Z", "2024-03-05T11:00:00Z"),
        ("day", "2024-03-05T10:10:00Z", "2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z"),
        ("month", "2024-03-05T10:10:00Z", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"),
        ("day", "2024-03-05T00:00:00Z", "2024-03-05T00:00:00Z", "2024-03-05T00:00:00Z"),
        # Buckets are UTC: another zone's instant lands in the UTC day.
        ("day", "2024-03-05T01:00:00+02:00", "2024-03-04T00:00:00Z", "2024-03-05T00:00:00Z"),
    ],
)
def test_buckets_are_utc(granularity, value, floor, ceiling):
    assert bucket_start(dt(value), granularity) == dt(floor)
    assert bucket_ceiling(dt(value), granularity) == dt(ceiling)


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_windows_are_contiguous_aligned_and_at_most_90_days(granularity):
    start, end = dt("2023-01-17T05:30:00Z"), dt("2024-11-03T12:34:56Z")
    windows = plan_summary_windows(start, end, granularity)
    assert windows[0].start == bucket_start(start, granularity)
    assert windows[-1].end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
        assert bucket_start(before.end, granularity) == before.end
    for window in windows:
        first, last = request_range(window)
        assert last < window.end
        # Even counting both ends' dates, no request spans more than 90 days.
        assert (last.date() - first.date()).days + 1 <= 90


def test_month_windows_hold_whole_months():
    windows = plan_summary_windows(dt("2024-01-20T00:00:00Z"), dt("2024-08-02T00:00:00Z"), "month")
    assert [str(w) for w in windows] == [
        "2024-01-01T00:00:00Z..2024-03-01T00:00:00Z",
        "2024-03-01T00:00:00Z..2024-05-01T00:00:00Z",
        "2024-05-01T00:00:00Z..2024-07-01T00:00:00Z",
        "2024-07-01T00:00:00Z..2024-08-02T00:00:00Z",
    ]


def test_no_window_for_an_empty_range():
    assert plan_summary_windows(dt("2024-01-02T00:00:00Z"), dt("2024-01-02T00:00:00Z"), "day") == []


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("IN_PROGRESS", JobState.RUNNING),
        ("in_progress", JobState.RUNNING),
        ("In Progress", JobState.RUNNING),
        ("queued", JobState.RUNNING),
        (None, JobState.RUNNING),
        ("something-new", JobState.RUNNING),
        ("success", JobState.DONE),
        ("SUCCESS", JobState.DONE),
        ("Completed", JobState.DONE),
        ("FAILED", JobState.FAILED),
        ("error", JobState.FAILED),
        ("Cancelled", JobState.FAILED),
        ("canceled", JobState.FAILED),
        ("failure_quota", JobState.FAILED),
        ("expired", JobState.FAILED),
    ],
)
def test_status_values_case_insensitive_unknown_means_running(status, state):
    assert job_state(status) is state


def test_job_id():
    assert job_id({"_id": "ds-1"}) == "ds-1"
    assert job_id({"_id": ""}) is None
    assert job_id({}) is None


def test_poll_delays_start_polite_and_grow_to_a_ceiling():
    delays = list(itertools.islice(poll_delays(1.0), 12))
    assert delays[0] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[1] > 1.0
    assert max(delays) == 30.0
    assert list(itertools.islice(poll_delays(0.01, ceiling=0.05), 6))[-1] == 0.05


def _answer(groups):
    return {"_id": "ds-1", "status": "success", "response": {"data": groups, "averageSessions": 3}}


def test_parse_result_bot_scope_takes_the_partition_app_and_keeps_zero_buckets():
    answer = _answer(
        [
            {
                "bot": "ALL",
                "val": [
                    {
                        "date": "2024-04-08T00:00:00.000Z",
                        "val": {
                            "requests": 0,
                            "sessions": 0,
                            "alert_notifications": 33,
                            "proactive_notifications": 10,
                            "conversations": 3,
                        },
                    },
                    {"date": "2024-04-09T00:00:00.000Z", "val": dict.fromkeys(["requests"], 0)},
                ],
            }
        ]
    )
    records = parse_result(answer, granularity="day", bot_id="st-1")
    assert records == [
        {
            "botId": "st-1",
            "granularity": "day",
            "periodStart": "2024-04-08T00:00:00+00:00",
            "requests": 0,
            "sessions": 0,
            "conversations": 3,
            "alert_notifications": 33,
            "proactive_notifications": 10,
        },
        {
            "botId": "st-1",
            "granularity": "day",
            "periodStart": "2024-04-09T00:00:00+00:00",
            "requests": 0,
            "sessions": None,
            "conversations": None,
            "alert_notifications": None,
            "proactive_notifications": None,
        },
    ]


def test_parse_result_admin_scope_takes_the_group_and_odd_values():
    answer = _answer(
        [
            {"bot": "st-b", "val": [{"date": "2024-04-08T10:00:00Z", "val": {"requests": "7"}}]},
            {"bot": "st-a", "val": [{"date": "2024-04-08", "val": {"sessions": 2.0}}]},
            {"bot": "st-c", "val": []},
        ]
    )
    records = parse_result(answer, granularity="hour")
    assert [(r["botId"], r["periodStart"]) for r in records] == [
        ("st-a", "2024-04-08T00:00:00+00:00"),
        ("st-b", "2024-04-08T10:00:00+00:00"),
    ]
    assert records[0]["sessions"] == 2
    assert records[1]["requests"] == 7
    assert records[1]["conversations"] is None


def test_parse_result_of_no_data_is_empty():
    assert parse_result({"response": {}}, granularity="day") == []


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "success"},
        {"response": {"data": "x"}},
        {"response": {"data": [{"val": []}]}},
        {"response": {"data": [{"bot": "a", "val": [{"date": "yesterday"}]}]}},
    ],
)
def test_parse_result_rejects_what_it_cannot_read(answer):
    with pytest.raises(SummaryFormatError):
        parse_result(answer, granularity="day")


def test_window_membership_and_the_newest_ended_period():
    window = Window(dt("2024-04-08T00:00:00Z"), dt("2024-04-10T12:00:00Z"))
    records = [
        {"periodStart": "2024-04-07T00:00:00+00:00"},
        {"periodStart": "2024-04-08T00:00:00+00:00"},
        {"periodStart": "2024-04-09T00:00:00+00:00"},
        {"periodStart": "2024-04-10T00:00:00+00:00"},
    ]
    inside = [r for r in records if in_window(r, window)]
    assert len(inside) == 3
    # Apr 10 is still open at the window's end: the bookmark is the start of Apr 9.
    assert newest_ended_period(inside, "day", until=window.end) == dt("2024-04-09T00:00:00Z")
    assert newest_ended_period(inside[:0], "day", until=window.end) is None
    assert newest_ended_period(inside, "hour", until=window.end) == dt("2024-04-10T00:00:00Z")
    assert dt("2024-04-10T00:00:00Z") - timedelta(days=1) == dt("2024-04-09T00:00:00Z")


def test_an_admin_job_keeps_its_apps_groups_when_it_can():
    records = [{"botId": "st-a"}, {"botId": "st-b"}, {"botId": "st-c"}]
    assert only_apps(records, {"st-b", "st-c"}) == records[1:]
    assert only_apps(records, {"st-x"}) == records


def test_newest_period_per_app_of_one_job():
    until = dt("2024-04-10T00:00:00Z")
    records = [
        {"botId": "st-a", "periodStart": "2024-04-08T00:00:00+00:00"},
        {"botId": "st-a", "periodStart": "2024-04-09T00:00:00+00:00"},
        {"botId": "st-b", "periodStart": "2024-04-07T00:00:00+00:00"},
    ]
    assert newest_per_app(records, ["st-a", "st-b", "st-c"], "day", until=until) == [
        dt("2024-04-09T00:00:00Z"),
        dt("2024-04-07T00:00:00Z"),
        None,
    ]
    # One account-wide partition ("*"): the newest period of every app.
    assert newest_per_app(records, ["*"], "day", until=until) == [dt("2024-04-09T00:00:00Z")]

"""The emulator's usage summary endpoints, exercised over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
import requests

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.__main__ import _discrepancies
from tap_kore_billing.sandbox.summary_report import TYPE_COUNTERS, requests_of

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 3, 1, tzinfo=UTC)
ALL_UNITS = ["request", "session", "alert", "proactive", "conversations"]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=3, apps=3, sessions=600, start=START, end=END) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def headers(sb: Sandbox) -> dict[str, str]:
    now = int(time.time())
    claims = {"appId": sb.client_id, "sub": "t", "jti": uuid.uuid4().hex, "exp": now + 600}
    return {"auth": jwt.encode(claims, sb.client_secret, algorithm="HS256")}


def post(http, sb, path: str, **body: Any) -> requests.Response:
    payload = {
        "fromDate": "2024-01-01T00:00:00.000Z",
        "toDate": "2024-01-31T23:59:59.999Z",
        "unitType": ALL_UNITS,
        "groupByBot": "no",
        "groupByPeriod": "date_day",
        **body,
    }
    return http.post(sb.url + path, json=payload, headers=headers(sb))


def status(http, sb, path: str, query: str = "?type=summary") -> requests.Response:
    return http.get(sb.url + path + "/status" + query, headers=headers(sb))


def app_path(bot_id: str) -> str:
    return f"/api/public/bot/{bot_id}/billingsessionsummary"


def finish(http, sb, path: str, job_id: str, polls: int = 20) -> dict[str, Any]:
    for _ in range(polls):
        answer = status(http, sb, path).json()
        if answer["_id"] == job_id and answer["status"] != "IN_PROGRESS":
            return answer
    raise AssertionError("job never finished")


def expected_days(sb: Sandbox, bot_id: str, lo: datetime, hi: datetime) -> dict[str, Counter]:
    days: dict[str, Counter] = {}
    for row in sb.expected(bot_id):
        if not lo <= row["start"] <= hi:
            continue
        day = row["start"].strftime("%Y-%m-%dT00:00:00.000Z")
        cell = days.setdefault(day, Counter())
        cell[TYPE_COUNTERS[row["billingSessionType"]]] += 1
    return days


def test_app_job_runs_in_progress_then_succeeds_with_the_detail_rows_counts(http, sb):
    sb.configure(summary_polls=3)
    bot = sb.bot_ids[0]
    started = post(http, sb, app_path(bot))
    assert started.status_code == 200, started.text
    job = started.json()
    assert job["status"] == "IN_PROGRESS"
    assert job["_id"].startswith("ds-")
    assert job["jobType"] == "BILLINGSESSIONS_API"
    states = [status(http, sb, app_path(bot)).json() for _ in range(4)]
    assert [s["status"] for s in states] == ["IN_PROGRESS"] * 3 + ["success"]
    assert all(s["_id"] == job["_id"] for s in states)
    data = states[-1]["response"]["data"]
    assert [g["bot"] for g in data] == ["ALL"]
    periods = data[0]["val"]
    # Every day of January, zero days included, each labelled by its UTC start.
    assert len(periods) == 31
    assert periods[0]["date"] == "2024-01-01T00:00:00.000Z"
    expected = expected_days(sb, bot, START, datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC))
    for period in periods:
        counts = expected.get(period["date"], Counter())
        for name in ("sessions", "conversations", "alert_notifications", "proactive_notifications"):
            assert period["val"][name] == counts[name], (period, name)
    january = _requests(sb, bot, START, datetime(2024, 2, 1, tzinfo=UTC))
    assert sum(p["val"]["requests"] for p in periods) == sum(january)
    assert sb.summary_stats()["posts"] == 1
    assert sb.summary_stats()["gets"] == 4


def _requests(sb: Sandbox, bot: str, lo: datetime, hi: datetime) -> list[int]:
    with sb._lock:
        rows = list(sb._data.visible)
    lo_ts, hi_ts = lo.timestamp(), hi.timestamp()
    return [requests_of(s) for s in rows if s.bot_id == bot and lo_ts <= s.start < hi_ts]


def test_units_asked_for_are_the_counters_sent(http, sb):
    sb.configure(summary_polls=0)
    bot = sb.bot_ids[1]
    job = post(http, sb, app_path(bot), unitType="conversations").json()
    answer = finish(http, sb, app_path(bot), job["_id"])
    assert {k for p in answer["response"]["data"][0]["val"] for k in p["val"]} == {"conversations"}


def test_admin_paths_knob_and_grouping_by_app_with_stream_ids(http, sb):
    sb.configure(summary_polls=0)
    assert sb._knobs["summary_admin_path"] == "plain"
    assert post(http, sb, "/api/public/bots/billingsessionsummary").status_code == 404
    chosen = sb.bot_ids[:2]
    job = post(
        http, sb, "/api/public/billingsessionsummary", groupByBot="yes", streamIds=chosen
    ).json()
    answer = finish(http, sb, "/api/public/billingsessionsummary", job["_id"])
    assert sorted(g["bot"] for g in answer["response"]["data"]) == sorted(chosen)
    sb.configure(summary_admin_path="bots")
    assert post(http, sb, "/api/public/billingsessionsummary").status_code == 404
    job = post(http, sb, "/api/public/bots/billingsessionsummary").json()
    answer = finish(http, sb, "/api/public/bots/billingsessionsummary", job["_id"])
    assert [g["bot"] for g in answer["response"]["data"]] == ["ALL"]
    # The account is one quota holder; a path that does not exist starts nothing.
    assert sb.summary_stats()["by_holder"]["account"]["POST"] == 2


def test_a_second_clients_job_shows_in_the_status_before_ours(http, sb):
    sb.configure(summary_polls=0, summary_foreign_polls=2)
    bot = sb.bot_ids[0]
    ours = post(http, sb, app_path(bot)).json()["_id"]
    shown = [status(http, sb, app_path(bot)).json() for _ in range(3)]
    assert shown[0]["_id"] != ours
    assert shown[0]["status"] == "success"
    assert shown[0]["response"]["data"][0]["val"][0]["val"]["requests"] >= 1000
    assert shown[1]["_id"] == shown[0]["_id"]
    assert shown[2]["_id"] == ours


def test_failed_job(http, sb):
    sb.configure(summary_polls=1, summary_fail=True)
    bot = sb.bot_ids[0]
    ours = post(http, sb, app_path(bot)).json()["_id"]
    answer = finish(http, sb, app_path(bot), ours)
    assert answer["status"] == "FAILED"
    assert "response" not in answer


def test_range_limits_and_bad_requests(http, sb):
    bot = sb.bot_ids[0]
    ok = post(http, sb, app_path(bot), toDate="2024-03-30T23:59:59.999Z")
    assert ok.status_code == 200, ok.text
    too_long = post(http, sb, app_path(bot), toDate="2024-03-31T00:00:00.000Z")
    assert too_long.status_code == 400
    assert "90 days" in too_long.json()["errors"][0]["msg"]
    assert post(http, sb, app_path(bot), groupByPeriod="week").status_code == 400
    assert post(http, sb, app_path(bot), unitType=["minutes"]).status_code == 400
    assert status(http, sb, app_path(bot), query="").status_code == 400
    assert http.get(sb.url + app_path(bot) + "/status?type=summary").status_code == 401
    assert http.get(sb.url + app_path(bot), headers=headers(sb)).status_code == 405
    fresh = sb.bot_ids[2]
    assert status(http, sb, app_path(fresh)).status_code == 404


def test_hourly_skips_empty_hours_and_months_are_whole(http, sb):
    sb.configure(summary_polls=0)
    bot = sb.bot_ids[0]
    job = post(
        http,
        sb,
        app_path(bot),
        fromDate="2024-01-10T10:10:00.000Z",
        toDate="2024-01-12T23:59:59.999Z",
        groupByPeriod="date_day_hour",
    ).json()
    periods = finish(http, sb, app_path(bot), job["_id"])["response"]["data"][0]["val"]
    assert len(periods) < 62
    assert all(any(p["val"].values()) for p in periods)
    assert all(p["date"].endswith(":00:00.000Z") for p in periods)
    job = post(
        http,
        sb,
        app_path(bot),
        fromDate="2024-01-01T00:00:00.000Z",
        toDate="2024-02-29T23:59:59.999Z",
        groupByPeriod="date_month",
    ).json()
    periods = finish(http, sb, app_path(bot), job["_id"])["response"]["data"][0]["val"]
    assert [p["date"] for p in periods] == ["2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"]
    total = sum(p["val"]["conversations"] for p in periods)
    assert total == sum(
        1
        for r in sb.expected(bot)
        if r["billingSessionType"] == "Conversations" and r["start"] < END
    )


def test_discrepancies_shift_chosen_app_days(http, sb):
    bot = sb.bot_ids[1]
    sb.configure(summary_polls=0)
    before = finish(http, sb, app_path(bot), post(http, sb, app_path(bot)).json()["_id"])
    sb.configure(
        summary_discrepancies=[
            {"botId": bot, "day": "2024-01-05", "unit": "conversations", "delta": 2}
        ]
    )
    after = finish(http, sb, app_path(bot), post(http, sb, app_path(bot)).json()["_id"])
    old = {p["date"]: p["val"] for p in before["response"]["data"][0]["val"]}
    new = {p["date"]: p["val"] for p in after["response"]["data"][0]["val"]}
    changed = [d for d in old if old[d] != new[d]]
    assert changed == ["2024-01-05T00:00:00.000Z"]
    assert new[changed[0]]["conversations"] == old[changed[0]]["conversations"] + 2
    with pytest.raises(ValueError, match="unit"):
        sb.configure(summary_discrepancies=[{"botId": bot, "day": "2024-01-05", "unit": "x"}])


def test_quota_and_faults_apply_to_summary_calls(http, sb):
    sb.configure(rate_per_minute=2, summary_polls=5)
    bot = sb.bot_ids[0]
    assert post(http, sb, app_path(bot)).status_code == 200
    assert status(http, sb, app_path(bot)).status_code == 200
    throttled = status(http, sb, app_path(bot))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    sb.configure(rate_per_minute=None, error_rate=1.0)
    assert status(http, sb, app_path(bot)).status_code in (500, 503)


def test_late_sessions_change_recent_periods():
    end = datetime(2024, 2, 1, tzinfo=UTC)
    with (
        Sandbox(seed=4, apps=1, sessions=200, late=40, start=START, end=end) as sb,
        requests.Session() as http,
    ):
        sb.configure(summary_polls=0)
        bot = sb.bot_ids[0]
        body = {"fromDate": "2024-01-20T00:00:00.000Z", "toDate": "2024-01-31T23:59:59.999Z"}
        first = finish(http, sb, app_path(bot), post(http, sb, app_path(bot), **body).json()["_id"])
        assert sb.reveal() == 40
        second = finish(
            http, sb, app_path(bot), post(http, sb, app_path(bot), **body).json()["_id"]
        )
        total = [
            sum(sum(p["val"].values()) for p in a["response"]["data"][0]["val"])
            for a in (first, second)
        ]
        assert total[1] > total[0]


def test_cli_discrepancy_specs():
    assert _discrepancies(["2:2024-03-05:conversations:+2"], ["st-a", "st-b"]) == [
        {"botId": "st-b", "day": "2024-03-05", "unit": "conversations", "delta": 2}
    ]
    assert _discrepancies(["st-x:2024-03-05:requests:-1"], [])[0]["botId"] == "st-x"
    with pytest.raises(ValueError, match="APP:DAY:UNIT:DELTA"):
        _discrepancies(["nonsense"], [])


def test_trouble_spares_the_first_jobs_and_hanging_jobs_never_finish(http, sb):
    sb.configure(summary_polls=0, summary_hang=True, summary_trouble_after=1)
    bot = sb.bot_ids[0]
    first = post(http, sb, app_path(bot)).json()["_id"]
    assert finish(http, sb, app_path(bot), first)["status"] == "success"
    second = post(http, sb, app_path(bot)).json()["_id"]
    shown = [status(http, sb, app_path(bot)).json() for _ in range(5)]
    assert {(s["_id"], s["status"]) for s in shown} == {(second, "IN_PROGRESS")}


def test_throttled_status_checks(http, sb):
    sb.configure(summary_polls=0, summary_throttle_polls=2)
    bot = sb.bot_ids[0]
    ours = post(http, sb, app_path(bot)).json()["_id"]
    first, second, third = (status(http, sb, app_path(bot)) for _ in range(3))
    assert (first.status_code, second.status_code) == (429, 429)
    assert first.headers["Retry-After"] == "1"
    assert third.json()["_id"] == ours
    sb.configure(retry_after=False)
    post(http, sb, app_path(bot))
    assert "Retry-After" not in status(http, sb, app_path(bot)).headers

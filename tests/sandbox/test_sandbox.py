"""The sandbox API emulator, exercised over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc
END = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CREDENTIALS_BODY = {"errors": [{"msg": "Invalid SDK credentials", "code": 4002}]}
ROW_TIME = re.compile(r"\d{2}-\d{2}-\d{4} (1[0-2]|[1-9]):[0-5]\d:[0-5]\d (am|pm)")
CONVERSATION_KEYS = {
    "conversationSessionId",
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
}
KNOWN_KEYS = CONVERSATION_KEYS | {
    "botId",
    "channel",
    "koreUserId",
    "channelUserId",
    "billingSessionType",
    "billingSessionId",
    "billingSessionStartDateTime",
    "billingSessionEndDateTime",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    # Undocumented extra fields are off by default; a tenth of the rows carry some here.
    with Sandbox(
        seed=1, apps=3, sessions=2000, end=END, boundary_fraction=0.05, extra_field_fraction=0.1
    ) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def token(sb: Sandbox, secret: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {"appId": sb.client_id, "sub": "test", "jti": uuid.uuid4().hex, "iat": now}
    payload["exp"] = now + 3600
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret or sb.client_secret, algorithm="HS256")


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def app_url(sb: Sandbox, bot_id: str) -> str:
    return f"{sb.url}/api/public/bot/{bot_id}/getBillingSessionsDetails"


def admin_url(sb: Sandbox) -> str:
    return f"{sb.url}/api/public/bots/getBillingSessionsDetails"


def call(
    http: requests.Session, sb: Sandbox, url: str, body: Any, auth: str | None = None
) -> requests.Response:
    headers = {"auth": auth or token(sb)}
    return http.post(url, json=body, headers=headers, timeout=10)


def window(sb: Sandbox, days: int = 60) -> dict[str, str]:
    start = sb.data_start + timedelta(days=10)
    return {"fromDate": iso(start), "toDate": iso(start + timedelta(days=days))}


def in_window(row: dict, body: dict[str, str]) -> bool:
    low = datetime.fromisoformat(body["fromDate"].replace("Z", "+00:00"))
    high = datetime.fromisoformat(body["toDate"].replace("Z", "+00:00"))
    return low <= row["start"] <= high


def fetch_all(
    http: requests.Session, sb: Sandbox, url: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    skip = 0
    while True:
        response = call(http, sb, url, {**body, "skip": skip, "limit": 500})
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["sessions"])
        assert len(page["sessions"]) <= 50
        rows.extend(page["sessions"])
        skip += len(page["sessions"])
        if not page["moreAvailable"]:
            return rows


# -- authentication ---------------------------------------------------------------------------


def test_valid_jwt_is_accepted(sb: Sandbox, http: requests.Session) -> None:
    response = call(http, sb, app_url(sb, sb.bot_ids[0]), window(sb))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda sb: token(sb, secret="not-the-secret-" + "0" * 40), id="bad-secret"),
        pytest.param(lambda sb: token(sb, appId="cs-someone-else"), id="wrong-appId"),
        pytest.param(lambda sb: token(sb, sub=None), id="no-sub"),
        pytest.param(lambda sb: token(sb, exp=int(time.time()) - 10), id="expired"),
        pytest.param(lambda sb: token(sb, exp=int(time.time()) + 7200), id="exp-over-1h"),
        pytest.param(lambda sb: token(sb, jti=None), id="no-jti"),
        pytest.param(lambda sb: "not.a.jwt", id="garbage"),
    ],
)
def test_invalid_jwt_is_rejected(sb: Sandbox, http: requests.Session, make: Any) -> None:
    response = call(http, sb, app_url(sb, sb.bot_ids[0]), window(sb), auth=make(sb))
    assert response.status_code == 401
    assert response.json() == CREDENTIALS_BODY


def test_missing_auth_header_is_rejected(sb: Sandbox, http: requests.Session) -> None:
    response = http.post(app_url(sb, sb.bot_ids[0]), json=window(sb), timeout=10)
    assert response.status_code == 401
    assert response.json() == CREDENTIALS_BODY


def test_reused_jti_is_rejected(sb: Sandbox, http: requests.Session) -> None:
    before = sb.stats()["jti_rejected"]
    auth = token(sb)
    url = app_url(sb, sb.bot_ids[0])
    assert call(http, sb, url, window(sb), auth=auth).status_code == 200
    second = call(http, sb, url, window(sb), auth=auth)
    assert second.status_code == 401
    assert second.json() == CREDENTIALS_BODY
    assert sb.stats()["jti_rejected"] == before + 1


def test_jti_not_enforced_allows_reuse() -> None:
    with Sandbox(sessions=50, end=END, enforce_jti=False) as sandbox:
        auth = jwt.encode({"appId": sandbox.client_id, "sub": "x"}, sandbox.client_secret)
        url = app_url(sandbox, sandbox.bot_ids[0])
        for _ in range(2):
            response = requests.post(url, json=window(sandbox), headers={"auth": auth}, timeout=5)
            assert response.status_code == 200


# -- paging -----------------------------------------------------------------------------------


def test_limit_is_capped_and_total_counts_the_page(sb: Sandbox, http: requests.Session) -> None:
    body = {**window(sb), "limit": 500, "skip": 0}
    page = call(http, sb, admin_url(sb), body).json()
    assert len(page["sessions"]) == 50
    assert page["total"] == 50
    assert page["moreAvailable"] is True
    # Without a limit the documented default of 100 is capped as well.
    page = call(http, sb, admin_url(sb), window(sb)).json()
    assert len(page["sessions"]) == 50


def test_paging_returns_every_row_exactly_once(sb: Sandbox, http: requests.Session) -> None:
    bot_id = sb.bot_ids[1]
    body = window(sb)
    rows = fetch_all(http, sb, app_url(sb, bot_id), body)
    ids = [row["billingSessionId"] for row in rows]
    expected = {r["billingSessionId"] for r in sb.expected(bot_id=bot_id) if in_window(r, body)}
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert len(expected) > 100
    assert {row["botId"] for row in rows} == {bot_id}


def test_more_available_is_false_on_the_last_page(sb: Sandbox, http: requests.Session) -> None:
    bot_id = sb.bot_ids[0]
    body = window(sb, days=5)
    count = sum(in_window(r, body) for r in sb.expected(bot_id=bot_id))
    last = call(http, sb, app_url(sb, bot_id), {**body, "skip": count - 1, "limit": 50}).json()
    assert last["total"] == 1
    assert last["moreAvailable"] is False
    beyond = call(http, sb, app_url(sb, bot_id), {**body, "skip": count + 5}).json()
    assert beyond == {"total": 0, "moreAvailable": False, "sessions": []}


def test_order_is_stable_but_not_chronological(sb: Sandbox, http: requests.Session) -> None:
    body = {**window(sb), "limit": 50}
    first = call(http, sb, admin_url(sb), body).json()["sessions"]
    again = call(http, sb, admin_url(sb), body).json()["sessions"]
    assert first == again
    starts = [
        datetime.strptime(r["billingSessionStartDateTime"], "%m-%d-%Y %I:%M:%S %p") for r in first
    ]
    assert starts != sorted(starts)
    assert starts != sorted(starts, reverse=True)


# -- request validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_date", "to_date", "status"),
    [
        ("2024-01-31", "2024-04-30", 200),
        ("2024-01-31", "2024-04-30T00:00:00.001Z", 400),
        ("2023-11-30", "2024-02-29", 200),  # leap year: Nov 30 + 3 months = Feb 29
        ("2023-11-30", "2024-03-01", 400),
        ("2022-11-30T10:00:00Z", "2023-02-28T10:00:00Z", 200),
        ("2022-11-30T10:00:00Z", "2023-02-28T10:00:01Z", 400),
        ("2024-03-01", "2024-02-01", 400),
        ("2024-03-01T00:00:00.001Z", "2024-03-01", 400),
        ("2024-03-01", "2024-03-01", 200),
        ("03-01-2024", "2024-03-05", 400),
        ("2024-02-30", "2024-03-05", 400),
        ("2024-03-01T00:00:00", "2024-03-05", 400),
        ("2024-03-01T00:00:00+00:00", "2024-03-05T00:00:00.000Z", 200),
    ],
)
def test_date_rules(
    sb: Sandbox, http: requests.Session, from_date: str, to_date: str, status: int
) -> None:
    body = {"fromDate": from_date, "toDate": to_date}
    response = call(http, sb, app_url(sb, sb.bot_ids[0]), body)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["errors"][0]["msg"]


def test_three_month_message_says_what_is_wrong(sb: Sandbox, http: requests.Session) -> None:
    body = {"fromDate": "2024-01-01", "toDate": "2024-06-01"}
    msg = call(http, sb, admin_url(sb), body).json()["errors"][0]["msg"]
    assert "3 months" in msg
    body = {"fromDate": "2024-02-01", "toDate": "2024-01-01"}
    msg = call(http, sb, admin_url(sb), body).json()["errors"][0]["msg"]
    assert "fromDate" in msg


def test_max_range_days_replaces_the_three_month_rule() -> None:
    with Sandbox(sessions=20, end=END, max_range_days=7) as sandbox, requests.Session() as http:
        url = app_url(sandbox, sandbox.bot_ids[0])
        body = {"fromDate": "2024-05-01", "toDate": "2024-05-08"}
        assert call(http, sandbox, url, body).status_code == 200
        response = call(http, sandbox, url, {**body, "toDate": "2024-05-08T00:00:01Z"})
        assert response.status_code == 400
        assert "7 days" in response.json()["errors"][0]["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"toDate": "2024-03-01"},
        {"fromDate": "2024-03-01"},
        {"fromDate": "2024-03-01", "toDate": "2024-03-02", "limit": -1},
        {"fromDate": "2024-03-01", "toDate": "2024-03-02", "limit": "10"},
        {"fromDate": "2024-03-01", "toDate": "2024-03-02", "skip": 1.5},
        ["not", "an", "object"],
    ],
)
def test_bad_body_is_400(sb: Sandbox, http: requests.Session, body: Any) -> None:
    response = call(http, sb, app_url(sb, sb.bot_ids[0]), body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_invalid_json_is_400(sb: Sandbox, http: requests.Session) -> None:
    response = http.post(
        app_url(sb, sb.bot_ids[0]),
        data=b"{not json",
        headers={"auth": token(sb), "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert "errors" in response.json()


def test_unknown_path_is_404(sb: Sandbox, http: requests.Session) -> None:
    response = call(http, sb, f"{sb.url}/api/public/getBillingSessionsDetails", window(sb))
    assert response.status_code == 404
    assert "errors" in response.json()


# -- filtering --------------------------------------------------------------------------------


def test_date_only_to_date_means_midnight(sb: Sandbox, http: requests.Session) -> None:
    midnight_rows = [r for r in sb.expected() if r["start"].time() == datetime.min.time()]
    assert midnight_rows, "boundary sessions should exist"
    edge = midnight_rows[len(midnight_rows) // 2]
    day = edge["start"]
    body = {
        "fromDate": (day - timedelta(days=3)).date().isoformat(),
        "toDate": day.date().isoformat(),
    }
    rows = fetch_all(http, sb, app_url(sb, edge["botId"]), body)
    ids = {r["billingSessionId"] for r in rows}
    assert edge["billingSessionId"] in ids  # 00:00:00 itself is included ...
    later_that_day = {
        r["billingSessionId"]
        for r in sb.expected(bot_id=edge["botId"])
        if day < r["start"] < day + timedelta(days=1)
    }
    assert later_that_day
    assert not ids & later_that_day  # ... but nothing after it on that day.


def test_both_bounds_are_inclusive(sb: Sandbox, http: requests.Session) -> None:
    target = sb.expected(bot_id=sb.bot_ids[2])[500]
    at = iso(target["start"])
    rows = call(http, sb, app_url(sb, target["botId"]), {"fromDate": at, "toDate": at}).json()
    ids = [r["billingSessionId"] for r in rows["sessions"]]
    assert target["billingSessionId"] in ids
    assert all(
        r["billingSessionStartDateTime"] == target["raw"]["billingSessionStartDateTime"]
        for r in rows["sessions"]
    )


def test_bounds_have_millisecond_precision(sb: Sandbox, http: requests.Session) -> None:
    target = sb.expected(bot_id=sb.bot_ids[0])[300]
    url = app_url(sb, target["botId"])
    just_after = (target["start"] + timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    body = {"fromDate": just_after[:-3] + "Z", "toDate": iso(target["start"] + timedelta(days=1))}
    ids = {r["billingSessionId"] for r in fetch_all(http, sb, url, body)}
    assert target["billingSessionId"] not in ids
    just_before = (target["start"] - timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    body = {"fromDate": iso(target["start"] - timedelta(days=1)), "toDate": just_before[:-3] + "Z"}
    ids = {r["billingSessionId"] for r in fetch_all(http, sb, url, body)}
    assert target["billingSessionId"] not in ids


def test_limit_zero_means_default(sb: Sandbox, http: requests.Session) -> None:
    page = call(http, sb, admin_url(sb), {**window(sb), "limit": 0}).json()
    assert len(page["sessions"]) == 50


def test_admin_path_with_and_without_bot_id(sb: Sandbox, http: requests.Session) -> None:
    body = window(sb, days=20)
    everything = fetch_all(http, sb, admin_url(sb), body)
    assert {r["botId"] for r in everything} == set(sb.bot_ids)
    assert {r["billingSessionId"] for r in everything} == {
        r["billingSessionId"] for r in sb.expected() if in_window(r, body)
    }
    one = fetch_all(http, sb, admin_url(sb), {**body, "botId": sb.bot_ids[1]})
    assert {r["botId"] for r in one} == {sb.bot_ids[1]}
    assert len(one) == sum(in_window(r, body) for r in sb.expected(bot_id=sb.bot_ids[1]))
    assert sb.stats()["by_holder"]["account"] >= 2


def test_channel_filter(sb: Sandbox, http: requests.Session) -> None:
    assert set(sb.channels) == {"rtm", "ivr", "msteams", "whatsapp"}
    body = {**window(sb), "channel": "ivr"}
    rows = fetch_all(http, sb, admin_url(sb), body)
    assert rows
    assert {r["channel"] for r in rows} == {"ivr"}
    assert all(re.fullmatch(r"\+\d{11}", r["channelUserId"]) for r in rows)
    assert len(rows) == sum(in_window(r, body) for r in sb.expected(channel="ivr"))


def test_row_shapes(sb: Sandbox) -> None:
    rows = sb.expected()
    notifications = [r for r in rows if "Notifications" in r["billingSessionType"]]
    assert 0.08 < len(notifications) / len(rows) < 0.25
    plain = [r for r in rows if r["billingSessionType"] == "Sessions"]
    assert 0.05 < len(plain) / len(rows) < 0.15
    assert len(rows) == len(notifications) + len(plain) + sum(
        r["billingSessionType"] == "Conversations" for r in rows
    )
    for r in notifications + plain:
        assert not CONVERSATION_KEYS & r["raw"].keys()
    for r in rows:
        raw = r["raw"]
        assert re.fullmatch(r"[0-9a-f]{24}", raw["billingSessionId"])
        assert re.fullmatch(r"st-[0-9a-f-]{36}", raw["botId"])
        assert re.fullmatch(r"u-[0-9a-f-]{36}", raw["koreUserId"])
        assert ROW_TIME.fullmatch(raw["billingSessionStartDateTime"])
        # A conversation of 15:01 ends with a billing session of one second.
        assert timedelta(seconds=1) <= r["end"] - r["start"] <= timedelta(minutes=15)
        if r["billingSessionType"] == "Conversations":
            assert raw.keys() >= CONVERSATION_KEYS
    with_extras = [r for r in rows if r["raw"].keys() - KNOWN_KEYS]
    assert 0.05 < len(with_extras) / len(rows) < 0.15
    assert len({r["billingSessionId"] for r in rows}) == len(rows) == 2000


def test_notification_rows_over_http_lack_conversation_keys(
    sb: Sandbox, http: requests.Session
) -> None:
    rows = fetch_all(http, sb, app_url(sb, sb.bot_ids[0]), window(sb, days=30))
    notes = [r for r in rows if r["billingSessionType"] != "Conversations"]
    assert notes
    assert all(not CONVERSATION_KEYS & r.keys() for r in notes)


def test_rendering_in_a_zone() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    kwargs: dict[str, Any] = {"sessions": 20, "start": start, "end": END}
    with Sandbox(**kwargs) as utc, Sandbox(tz="America/New_York", **kwargs) as ny:
        a, b = utc.expected()[0], ny.expected()[0]
        assert a["start"] == b["start"]
        shown_utc = datetime.strptime(
            a["raw"]["billingSessionStartDateTime"], "%m-%d-%Y %I:%M:%S %p"
        )
        shown_ny = datetime.strptime(
            b["raw"]["billingSessionStartDateTime"], "%m-%d-%Y %I:%M:%S %p"
        )
        assert shown_utc - shown_ny in (timedelta(hours=4), timedelta(hours=5))
        assert shown_utc == a["start"].replace(tzinfo=None)


def test_same_seed_same_data() -> None:
    first = Sandbox(seed=7, sessions=100, end=END)
    second = Sandbox(seed=7, sessions=100, end=END)
    other = Sandbox(seed=8, sessions=100, end=END)
    assert first.bot_ids == second.bot_ids != other.bot_ids
    assert first.expected() == second.expected()


def test_filter_field_end() -> None:
    with Sandbox(sessions=300, end=END, filter_field="end", boundary_fraction=0.2) as sandbox:
        edge = next(r for r in sandbox.expected() if r["end"].time() == datetime.min.time())
        body = {"fromDate": iso(edge["end"]), "toDate": iso(edge["end"])}
        page = requests.post(
            app_url(sandbox, edge["botId"]), json=body, headers={"auth": token(sandbox)}, timeout=5
        ).json()
        assert edge["billingSessionId"] in {r["billingSessionId"] for r in page["sessions"]}
        assert all(
            r["billingSessionEndDateTime"] == edge["raw"]["billingSessionEndDateTime"]
            for r in page["sessions"]
        )


# -- scopes -----------------------------------------------------------------------------------


def test_scopes_and_unknown_apps() -> None:
    with Sandbox(sessions=50, end=END, admin_enabled=False) as sandbox:
        body = window(sandbox)
        response = requests.post(
            admin_url(sandbox), json=body, headers={"auth": token(sandbox)}, timeout=5
        )
        assert response.status_code == 403
        stranger = "st-00000000-0000-4000-8000-000000000000"
        response = requests.post(
            app_url(sandbox, stranger), json=body, headers={"auth": token(sandbox)}, timeout=5
        )
        assert response.status_code == 403
        assert response.json() == {
            "errors": [
                {"msg": f"App {stranger} is not accessible with these credentials", "code": 403}
            ]
        }
        sandbox.configure(admin_enabled=True)
        response = requests.post(
            admin_url(sandbox),
            json={**body, "botId": stranger},
            headers={"auth": token(sandbox)},
            timeout=5,
        )
        assert response.status_code == 403
        sandbox.configure(known_apps_only=False)
        response = requests.post(
            app_url(sandbox, stranger), json=body, headers={"auth": token(sandbox)}, timeout=5
        )
        assert response.json() == {"total": 0, "moreAvailable": False, "sessions": []}


# -- rate limits ------------------------------------------------------------------------------


def test_per_minute_rate_limit() -> None:
    with Sandbox(sessions=50, end=END, rate_per_minute=3) as sandbox, requests.Session() as http:
        url = app_url(sandbox, sandbox.bot_ids[0])
        codes = [call(http, sandbox, url, window(sandbox)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        throttled = call(http, sandbox, url, window(sandbox))
        assert throttled.status_code == 429
        assert throttled.json() == {
            "errors": [
                {
                    "msg": "You've exceeded the per-minute rate limit. "
                    "Please wait for sometime before retrying.",
                    "code": 429,
                }
            ]
        }
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # The quota is per app: another app is not throttled.
        assert call(http, sandbox, app_url(sandbox, sandbox.bot_ids[1]), window(sandbox)).ok
        sandbox.configure(retry_after=False)
        assert "Retry-After" not in call(http, sandbox, url, window(sandbox)).headers
        stats = sandbox.stats()
        assert stats["throttled"] == 2
        assert stats["by_status"] == {"200": 4, "429": 2}
        assert stats["by_holder"][sandbox.bot_ids[0]] == 5


def test_per_hour_rate_limit_and_throttled_calls_are_free() -> None:
    with Sandbox(sessions=50, end=END, rate_per_hour=2) as sandbox, requests.Session() as http:
        url = admin_url(sandbox)
        codes = [call(http, sandbox, url, window(sandbox)).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        response = call(http, sandbox, url, window(sandbox))
        assert "per-hour" in response.json()["errors"][0]["msg"]
        assert 3000 < int(response.headers["Retry-After"]) <= 3600
        sandbox.configure(rate_per_hour=3)
        # Throttled calls did not use up the quota, so exactly one more call fits.
        codes = [call(http, sandbox, url, window(sandbox)).status_code for _ in range(2)]
        assert codes == [200, 429]


# -- late and new sessions --------------------------------------------------------------------


def test_reveal_adds_late_and_new_sessions() -> None:
    with Sandbox(sessions=200, late=12, new=7, end=END) as sandbox, requests.Session() as http:
        before = {r["billingSessionId"] for r in sandbox.expected()}
        assert len(before) == 200
        body = {"fromDate": iso(END - timedelta(days=1)), "toDate": iso(END + timedelta(hours=2))}
        url = admin_url(sandbox)
        assert {r["billingSessionId"] for r in fetch_all(http, sandbox, url, body)} <= before
        assert http.post(f"{sandbox.url}/__sandbox/reveal", timeout=5).json()["revealed"] == 19
        added = [r for r in sandbox.expected() if r["billingSessionId"] not in before]
        assert len(added) == 19
        late = [r for r in added if r["start"] < END]
        new = [r for r in added if r["start"] >= END]
        assert len(late) == 12
        assert len(new) == 7
        assert all(END - timedelta(hours=12) <= r["end"] < END for r in late)
        assert all(r["start"] <= END + timedelta(minutes=50) for r in new)
        assert all(r["end"] < END + timedelta(hours=1) for r in new)
        served = {r["billingSessionId"] for r in fetch_all(http, sandbox, url, body)}
        assert {r["billingSessionId"] for r in added} <= served
        assert sandbox.reveal() == 0
        assert sandbox.info()["visible_sessions"] == 219


# -- faults -----------------------------------------------------------------------------------


def test_error_fault() -> None:
    with Sandbox(sessions=50, end=END, error_rate=1.0) as sandbox:
        for _ in range(4):
            response = requests.post(
                admin_url(sandbox),
                json=window(sandbox),
                headers={"auth": token(sandbox)},
                timeout=5,
            )
            assert response.status_code in (500, 503)
            assert response.json()["errors"][0]["code"] == response.status_code


def test_drop_fault() -> None:
    with Sandbox(sessions=50, end=END, drop_rate=1.0) as sandbox:
        with pytest.raises(requests.ConnectionError):
            requests.post(
                admin_url(sandbox),
                json=window(sandbox),
                headers={"auth": token(sandbox)},
                timeout=5,
            )
        # Control endpoints are never faulted.
        stats = requests.get(f"{sandbox.url}/__sandbox/stats", timeout=5).json()
        assert stats["by_status"] == {"dropped": 1}
        assert stats["requests"] == 1


def test_truncate_fault() -> None:
    with Sandbox(sessions=50, end=END, truncate_rate=1.0) as sandbox:
        response = requests.post(
            admin_url(sandbox), json=window(sandbox), headers={"auth": token(sandbox)}, timeout=5
        )
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content) > 0
        with pytest.raises(ValueError, match=r".+"):
            json.loads(response.content)


def test_slow_fault_and_concurrency() -> None:
    with Sandbox(sessions=50, end=END, slow_rate=1.0, slow_seconds=0.4) as sandbox:
        results: list[int] = []

        def one() -> None:
            response = requests.post(
                admin_url(sandbox),
                json=window(sandbox),
                headers={"auth": token(sandbox)},
                timeout=5,
            )
            results.append(response.status_code)

        began = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        assert results == [200, 200, 200]
        assert 0.4 <= elapsed < 1.2  # slept, but concurrently
        assert sandbox.stats()["max_in_flight"] >= 2


def test_faults_are_reproducible() -> None:
    def outcomes() -> list[int]:
        codes = []
        with Sandbox(sessions=20, end=END, error_rate=0.5, fault_seed=3) as sandbox:
            for _ in range(12):
                response = requests.post(
                    admin_url(sandbox),
                    json=window(sandbox),
                    headers={"auth": token(sandbox)},
                    timeout=5,
                )
                codes.append(response.status_code)
        return codes

    first = outcomes()
    assert first == outcomes()
    assert 200 in first
    assert {500, 503} & set(first)


# -- control endpoints ------------------------------------------------------------------------


def test_control_endpoints(sb: Sandbox, http: requests.Session) -> None:
    info = http.get(f"{sb.url}/__sandbox/info", timeout=5).json()
    assert info == {
        "url": sb.url,
        "client_id": sb.client_id,
        "bot_ids": sb.bot_ids,
        "channels": sb.channels,
        "visible_sessions": 2000,
        "apps": [{"botId": app["botId"], "name": app["name"]} for app in sb.apps()],
    }
    assert [app["name"] for app in info["apps"]] == ["Front Desk", "Claims Bot", "Billing Help"]
    assert sb.client_secret not in json.dumps(info)
    assert sb.planted_secret not in json.dumps(info)
    stats = http.get(f"{sb.url}/__sandbox/stats", timeout=5).json()
    assert stats["requests"] == sum(stats["by_status"].values())
    assert stats["rows_served"] > 0
    response = http.post(f"{sb.url}/__sandbox/configure", json={"seed": 2}, timeout=5)
    assert response.status_code == 400
    response = http.post(f"{sb.url}/__sandbox/configure", json={"max_page_size": 10}, timeout=5)
    assert response.status_code == 200
    try:
        page = call(http, sb, admin_url(sb), window(sb)).json()
        assert page["total"] == 10
    finally:
        sb.configure(max_page_size=50)


def test_reset_stats(sb: Sandbox, http: requests.Session) -> None:
    call(http, sb, admin_url(sb), window(sb))
    sb.reset_stats()
    assert sb.stats()["requests"] == 0
    call(http, sb, admin_url(sb), window(sb))
    assert sb.stats()["requests"] == 1
    assert sb.stats()["rows_served"] == 50


# -- command line -----------------------------------------------------------------------------


def test_cli_starts_prints_one_json_line_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("KORE_SANDBOX_CLIENT_SECRET", None)
    args = ["--port", "0", "--sessions", "100", "--apps", "2", "--end", "2024-06-01T00:00:00Z"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tap_kore_billing.sandbox", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert set(line) == {
            "url",
            "client_id",
            "bot_ids",
            "channels",
            "visible_sessions",
            "apps",
            "client_secret",
        }
        assert len(line["bot_ids"]) == 2
        assert line["visible_sessions"] == 100
        info = requests.get(f"{line['url']}/__sandbox/info", timeout=5).json()
        assert info["bot_ids"] == line["bot_ids"]
        auth = jwt.encode(
            {
                "appId": line["client_id"],
                "sub": "cli",
                "jti": uuid.uuid4().hex,
                "exp": int(time.time()) + 60,
            },
            line["client_secret"],
            algorithm="HS256",
        )
        body = {"fromDate": "2024-04-01", "toDate": "2024-05-31"}
        response = requests.post(
            f"{line['url']}/api/public/bots/getBillingSessionsDetails",
            json=body,
            headers={"auth": auth},
            timeout=5,
        )
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out == ""
    assert "Traceback" not in err


def test_cli_secret_from_environment_is_not_printed() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KORE_SANDBOX_CLIENT_SECRET": "s3cret-from-env"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tap_kore_billing.sandbox", "--port", "0", "--sessions", "10"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert "client_secret" not in line
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0

"""The emulator's latency model and the counters that show how a client spreads its calls."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
import requests

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.latency import Latency

UTC = timezone.utc
END = datetime(2024, 6, 1, tzinfo=UTC)
BODY = {"fromDate": "2024-04-01T00:00:00.000Z", "toDate": "2024-05-31T00:00:00.000Z"}


def token(sb: Sandbox) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"appId": sb.client_id, "sub": "t", "jti": uuid.uuid4().hex}
    claims |= {"iat": now, "exp": now + 3600}
    return jwt.encode(claims, sb.client_secret, algorithm="HS256")


def post(http: requests.Session, sb: Sandbox, bot_id: str, limit: int) -> requests.Response:
    url = f"{sb.url}/api/public/bot/{bot_id}/getBillingSessionsDetails"
    return http.post(url, json={**BODY, "limit": limit}, headers={"auth": token(sb)}, timeout=10)


def test_jitter_stays_within_its_fraction_and_is_reproducible() -> None:
    draws = [Latency(seed=3).scaled(0.3, 0.2) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same first draw
    model = Latency(seed=3)
    many = [model.scaled(0.3, 0.2) for _ in range(2000)]
    assert 0.24 <= min(many) < 0.25
    assert 0.35 < max(many) <= 0.36
    assert len(set(many)) > 1000
    assert model.scaled(0.3, 0.0) == 0.3
    assert model.scaled(0.0, 0.5) == 0.0


def test_off_by_default_and_knobs_are_checked() -> None:
    with Sandbox(sessions=10, end=END) as sb:
        assert sb.info()  # starts with no latency knobs at all
        for name, bad in (("latency_seconds", -1), ("latency_jitter", 1.5)):
            with pytest.raises(ValueError, match=name):
                sb.configure(**{name: bad})


def test_answers_take_the_base_time_plus_the_cost_of_their_rows() -> None:
    with (
        Sandbox(sessions=400, apps=1, end=END, max_page_size=100) as sb,
        requests.Session() as http,
    ):
        sb.configure(latency_seconds=0.15, latency_per_row_seconds=0.002)
        began = time.monotonic()
        empty = post(http, sb, sb.bot_ids[0], 1)
        one_row = time.monotonic() - began
        began = time.monotonic()
        full = post(http, sb, sb.bot_ids[0], 100)
        hundred_rows = time.monotonic() - began
        assert empty.status_code == full.status_code == 200
        assert len(full.json()["sessions"]) == 100
        # Lower bounds only: the emulator sleeps at least this long, whatever the machine.
        assert one_row >= 0.15
        assert hundred_rows >= 0.15 + 100 * 0.002


def test_connections_and_arrivals_are_counted_per_holder() -> None:
    with Sandbox(sessions=60, apps=2, end=END) as sb, requests.Session() as http:
        sb.reset_stats()
        first, second = sb.bot_ids
        for bot_id in (first, second, first):
            assert post(http, sb, bot_id, 5).status_code == 200
        with requests.Session() as other:
            assert post(other, sb, second, 5).status_code == 200
        arrivals = sb.arrivals()
        assert [len(arrivals[first]), len(arrivals[second])] == [2, 2]
        everything = sorted(arrivals[first] + arrivals[second])
        assert arrivals[first][0] == everything[0]
        assert arrivals[first] == sorted(arrivals[first])
        # One keep-alive connection per client session.
        assert sb.stats()["connections"] == 2
        sb.reset_stats()
        assert sb.arrivals() == {}
        assert sb.stats()["connections"] == 0

"""The Billing Sessions detail endpoint (`getBillingSessionsDetails`, an app's path and the
account-wide one): the request body's rules (fromDate/toDate, the three-month range, limit,
skip, channel, botId), the page it answers (`total` counting the page, a silent page-size
cap, shuffled rows), when a session is published, the rows served corrupt, and a small cache
of recent queries. The gate in front of it is `gate.py`; the rows come from `data.py`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tap_kore_billing.sandbox.data import Index, Session, add_months, dumps
from tap_kore_billing.sandbox.wire import UTC, ApiError, Reply, epoch_bounds, parse_api_date

APP_PATH = re.compile(r"/api/public/bot/([^/]+)/getBillingSessionsDetails")
ADMIN_PATH = "/api/public/bots/getBillingSessionsDetails"
DEFAULT_LIMIT = 100
CACHE_SIZE = 32
# What a row listed in `corrupt_ids` carries instead of its billingSessionEndDateTime.
CORRUPT_DATETIME = "31-02-2024 25:61:00 xm"


@dataclass(frozen=True)
class SessionsRoute:
    """A detail path: the app whose path it is, or None for the account-wide path."""

    bot_id: str | None


def route(path: str) -> SessionsRoute | None:
    """The detail endpoint a path names, or None when it is not one."""
    match = APP_PATH.fullmatch(path)
    if match is not None:
        return SessionsRoute(match.group(1))
    return SessionsRoute(None) if path == ADMIN_PATH else None


def parse_body(raw_body: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw_body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def admin_bots(body: dict[str, Any], apps: Sequence[str], *, only_known: bool) -> tuple[str, ...]:
    """The apps an account-wide call reads: its `botId` when sent, else every app."""
    wanted = body.get("botId")
    if wanted is None:
        return tuple(apps)
    if not isinstance(wanted, str):
        raise ApiError(400, "botId must be a string")
    if only_known and wanted not in apps:
        raise ApiError(403, f"App {wanted} is not accessible with these credentials")
    return (wanted,)


def _non_negative_int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return value


def published(session: Session, knobs: dict[str, Any]) -> bool:
    """Whether the API shows a session yet: billing data is published after a delay."""
    now = knobs["clock"] if knobs["clock"] is not None else time.time()
    delay = knobs["publication_delay_hours"]
    # The late ones are a fixed subset: the same sessions are late in every query.
    if session.order < knobs["late_fraction"] * 2**64:
        delay += knobs["late_delay_hours"]
    return session.end + delay * 3600 <= now


def expected_rows(
    sessions: Sequence[Session], bot_id: str | None, channel: str | None
) -> list[dict[str, Any]]:
    """The sessions of that app and channel (None: any) as tests compare them with what a
    client read, oldest start first."""
    out = []
    for s in sessions:
        if (bot_id is None or s.bot_id == bot_id) and (channel is None or s.channel == channel):
            out.append(
                {
                    "billingSessionId": s.id,
                    "botId": s.bot_id,
                    "channel": s.channel,
                    "billingSessionType": s.type,
                    "start": datetime.fromtimestamp(s.start, UTC),
                    "end": datetime.fromtimestamp(s.end, UTC),
                    # A copy, so callers cannot alter what the server renders; only rows
                    # with extra keys can hold nested values.
                    "raw": json.loads(s.blob) if s.extra else s.raw.copy(),
                }
            )
    out.sort(key=lambda row: (row["start"], row["billingSessionId"]))
    return out


def _row_blob(session: Session, knobs: dict[str, Any]) -> bytes:
    if session.id not in knobs["corrupt_ids"]:
        return session.blob
    return dumps({**session.raw, "billingSessionEndDateTime": CORRUPT_DATETIME})


class SessionPages:
    """The visible sessions indexed by the filter time, with the last few queries' matches."""

    def __init__(self, sessions: Sequence[Session], filter_field: str) -> None:
        self._lock = threading.Lock()
        self._index = Index(sessions, filter_field)
        self._version = 0
        self._cache: OrderedDict[tuple[Any, ...], list[Session]] = OrderedDict()

    def rebuild(self, sessions: Sequence[Session], filter_field: str) -> None:
        """After the visible sessions or the filter field changed."""
        index = Index(sessions, filter_field)
        with self._lock:
            self._index = index
            self._version += 1
            self._cache.clear()

    def page(self, knobs: dict[str, Any], bot_ids: tuple[str, ...], body: dict[str, Any]) -> Reply:
        """One page of the apps' sessions that the body's filters match."""
        from_dt = parse_api_date("fromDate", body.get("fromDate"))
        to_dt = parse_api_date("toDate", body.get("toDate"))
        if from_dt > to_dt:
            raise ApiError(400, "fromDate must not be later than toDate")
        # The documented limit is three calendar months; max_range_days emulates a deployment
        # that allows less.
        days = knobs["max_range_days"]
        if days is None and to_dt > add_months(from_dt, 3):
            raise ApiError(400, "Date range must not exceed 3 months between fromDate and toDate")
        if days is not None and to_dt - from_dt > timedelta(days=days):
            raise ApiError(
                400, f"Date range must not exceed {days} days between fromDate and toDate"
            )
        limit = _non_negative_int(body, "limit", DEFAULT_LIMIT)
        skip = _non_negative_int(body, "skip", 0)
        if limit > knobs["max_page_size"] and knobs["oversized_limit"] == "reject":
            raise ApiError(400, f"limit must not exceed {knobs['max_page_size']}")
        if limit > knobs["max_page_size"] and knobs["oversized_limit"] == "fail":
            raise ApiError(500, "Internal Server Error")
        # Like a MongoDB cursor, limit 0 means "no explicit limit": the default applies.
        limit = min(limit or DEFAULT_LIMIT, knobs["max_page_size"])
        channel = body.get("channel")
        if channel is not None and not isinstance(channel, str):
            raise ApiError(400, "channel must be a string")
        lo, hi = epoch_bounds(from_dt, to_dt)
        matches = self._matches(bot_ids, lo, hi, channel or None)
        if knobs["publication_delay_hours"] or knobs["late_fraction"]:
            matches = [s for s in matches if published(s, knobs)]
        page = matches[skip : skip + limit]
        more = b"true" if skip + len(page) < len(matches) else b"false"
        stall = knobs["stall_after_skip"]
        if stall is not None and skip >= stall and page:
            # A server that claims more rows but sends none.
            page, more = [], b"true"
        payload = b"".join(
            (
                b'{"total":',
                str(len(page)).encode(),
                b',"moreAvailable":',
                more,
                b',"sessions":[',
                b",".join(_row_blob(s, knobs) for s in page),
                b"]}",
            )
        )
        return Reply(200, payload, rows=len(page))

    def _matches(
        self, bot_ids: tuple[str, ...], lo: int, hi: int, channel: str | None
    ) -> list[Session]:
        with self._lock:
            index, version = self._index, self._version
            key = (version, bot_ids, lo, hi, channel)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        # Selected outside the lock; a result computed on an index since replaced is not kept.
        found = index.select(bot_ids, lo, hi, channel)
        with self._lock:
            if version == self._version:
                self._cache[key] = found
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return found

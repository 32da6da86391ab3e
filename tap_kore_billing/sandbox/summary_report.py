"""What a usage summary job reports: counters per app (or one group) and period bucket, computed
from the same sessions the detail endpoint serves. A session counts in the UTC bucket of its
start (or end, `summary_bucket_by`) when that instant lies within the job's range; the first
bucket is labelled by its start; `summary_discrepancies` shift chosen app-days; hourly results
may skip empty hours. The job's lifecycle around it is `summary.py`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tap_kore_billing.sandbox.data import Session

UTC = timezone.utc
UNIT_COUNTERS = {
    "request": "requests",
    "session": "sessions",
    "alert": "alert_notifications",
    "proactive": "proactive_notifications",
    "conversations": "conversations",
}
TYPE_COUNTERS = {
    "Sessions": "sessions",
    "Conversations": "conversations",
    "Alert Notifications": "alert_notifications",
    "Proactive Notifications": "proactive_notifications",
}
COUNTER_NAMES = frozenset(UNIT_COUNTERS.values())


@dataclass(frozen=True)
class Filters:
    """A job's checked filters: bucket size, units asked for, inclusive epoch bounds and the
    first bucket."""

    granularity: str
    units: list[str]
    lo: int
    hi: int
    first: datetime


def requests_of(session: Session) -> int:
    """The `requests` counter of one session: deterministic, 1 to 6."""
    return 1 + session.order % 6


def bucket_start(stamp: int, granularity: str) -> datetime:
    """The start of the hour, day or month holding the epoch second `stamp` (UTC)."""
    value = datetime.fromtimestamp(stamp, UTC)
    if granularity == "hour":
        return value.replace(minute=0, second=0)
    if granularity == "day":
        return value.replace(hour=0, minute=0, second=0)
    return value.replace(day=1, hour=0, minute=0, second=0)


def _next(value: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return value + timedelta(hours=1)
    if granularity == "day":
        return value + timedelta(days=1)
    days = calendar.monthrange(value.year, value.month)[1]
    return value + timedelta(days=days)


def _label(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def iso_now() -> str:
    return _label(datetime.now(UTC).replace(microsecond=0))


def report(
    sessions: list[Session],
    bots: list[str],
    group_name: str | None,
    filters: Filters,
    knobs: dict[str, Any],
    *,
    offset: int,
) -> list[dict[str, Any]]:
    """The result's groups: one per app of `bots`, or one named `group_name`; `offset` is
    added to every counter (another client's job)."""
    granularity, lo, hi, first = filters.granularity, filters.lo, filters.hi, filters.first
    wanted = set(bots)
    by_end = knobs["summary_bucket_by"] == "end"
    counts: dict[tuple[str, datetime], dict[str, int]] = {}
    labels = [group_name] if group_name is not None else bots
    for session in sessions:
        if session.bot_id not in wanted:
            continue
        stamp = session.end if by_end else session.start
        if not lo <= stamp <= hi:
            continue
        group = group_name if group_name is not None else session.bot_id
        bucket = max(bucket_start(stamp, granularity), first)
        cell = counts.setdefault((group, bucket), dict.fromkeys(COUNTER_NAMES, 0))
        cell["requests"] += requests_of(session)
        counter = TYPE_COUNTERS.get(session.type)
        if counter is not None:
            cell[counter] += 1
    for shift in knobs["summary_discrepancies"]:
        if shift["botId"] not in wanted:
            continue
        midnight = datetime.combine(shift["day"], datetime.min.time(), UTC)
        stamp = int(midnight.timestamp())
        if not lo <= stamp <= hi:
            continue
        group = group_name if group_name is not None else shift["botId"]
        bucket = max(bucket_start(stamp, granularity), first)
        cell = counts.setdefault((group, bucket), dict.fromkeys(COUNTER_NAMES, 0))
        cell[shift["unit"]] += shift["delta"]
    skip_empty = granularity == "hour" and knobs["summary_hourly_gaps"]
    last = bucket_start(hi, granularity)
    groups = []
    for label in labels:
        periods = []
        bucket = first
        while bucket <= last:
            found = counts.get((label, bucket))
            if found is not None or not skip_empty:
                cell = found or dict.fromkeys(COUNTER_NAMES, 0)
                values = {
                    UNIT_COUNTERS[u]: cell[UNIT_COUNTERS[u]] + offset
                    for u in UNIT_COUNTERS
                    if u in filters.units
                }
                periods.append({"date": _label(bucket), "val": values})
            bucket = _next(bucket, granularity)
        groups.append({"bot": label, "val": periods})
    return groups


def finished(job_id: str, groups: list[dict[str, Any]], *, failed: bool) -> dict[str, Any]:
    """A finished job's status answer, its result inline."""
    sessions = [
        p["val"].get("sessions", 0) + p["val"].get("conversations", 0)
        for g in groups
        for p in g["val"]
    ]
    return {
        "_id": job_id,
        "status": "FAILED" if failed else "success",
        "modifiedOn": iso_now(),
        "lastModifiedBy": "u-sandbox",
        "response": {
            "data": groups,
            "averageSessions": sum(sessions) // len(sessions) if sessions else 0,
        },
    }

"""The usage summary report job, without I/O: buckets and windows, job-status decisions, polling
delays and the parsing of a finished job's result into records.

The API runs a summary as an asynchronous job: a POST starts it, a GET of `.../status` shows
"the" job of the app or account (it names no job, so the caller compares `_id`s), and the
finished job carries its result inline: `response.data[]`, one entry per app group, each with
`val[]`, one entry per period.
"""

from __future__ import annotations

import enum
import typing as t
from collections.abc import Iterator
from datetime import datetime, timedelta

from tap_kore_billing.core.datetimes import UTC, to_iso
from tap_kore_billing.core.windows import Window, add_months

GRANULARITIES = ("day", "hour", "month")
GROUP_BY_PERIOD = {"hour": "date_day_hour", "day": "date_day", "month": "date_month"}
# Every documented unit, always all five: the counters of one record must come from one job.
UNIT_TYPES = ("request", "session", "alert", "proactive", "conversations")
COUNTERS = (
    "requests",
    "sessions",
    "conversations",
    "alert_notifications",
    "proactive_notifications",
)
MAX_RANGE_DAYS = 90  # "Max: 90 days" between fromDate and toDate
# Month windows hold whole months (a month split over two jobs would be counted twice, half
# each time); two months are at most 62 days, three can be 92.
MONTHS_PER_WINDOW = 2
POLL_GROWTH = 1.5
MAX_POLL_SECONDS = 30.0

_DONE = frozenset(
    {"success", "succeeded", "successful", "completed", "complete", "done", "finished"}
)
_FAILED = frozenset(
    {
        "failed",
        "failure",
        "fail",
        "error",
        "errored",
        "cancelled",
        "canceled",
        "aborted",
        "rejected",
        "expired",
        "timeout",
        "timedout",
        "timed_out",
    }
)


class JobState(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SummaryFormatError(ValueError):
    """A finished job's result is not shaped like `response.data[].val[]`."""


# --- buckets and windows ----------------------------------------------------------------------


def bucket_start(value: datetime, granularity: str) -> datetime:
    """The start (UTC) of the bucket holding `value`: the API's buckets are UTC."""
    value = value.astimezone(UTC)
    if granularity == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "month":
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown granularity {granularity!r}")


def next_bucket(start: datetime, granularity: str) -> datetime:
    """The start of the bucket after the one starting at `start`."""
    if granularity == "hour":
        return start + timedelta(hours=1)
    if granularity == "day":
        return start + timedelta(days=1)
    if granularity == "month":
        return add_months(start, 1)
    raise ValueError(f"unknown granularity {granularity!r}")


def bucket_ceiling(value: datetime, granularity: str) -> datetime:
    """`value` when it is a bucket edge, else the end of its bucket."""
    floor = bucket_start(value, granularity)
    return floor if floor == value else next_bucket(floor, granularity)


def plan_summary_windows(start: datetime, end: datetime, granularity: str) -> list[Window]:
    """Contiguous windows from the bucket holding `start` up to `end`, each starting on a bucket
    edge and at most 90 days long; every window but the last also ends on a bucket edge, so no
    bucket is split between two jobs."""
    windows: list[Window] = []
    cursor = bucket_start(start, granularity)
    while cursor < end:
        if granularity == "month":
            upper = add_months(cursor, MONTHS_PER_WINDOW)
        else:
            # From the day's midnight: 90 dates even when counted inclusively.
            upper = bucket_start(cursor, "day") + timedelta(days=MAX_RANGE_DAYS)
        upper = min(upper, end)
        windows.append(Window(cursor, upper))
        cursor = upper
    return windows


def request_range(window: Window) -> tuple[datetime, datetime]:
    """fromDate and toDate for a window: whether toDate is inclusive is not documented, so it
    stops a millisecond before the window's end and never reaches into the next bucket."""
    return window.start, max(window.start, window.end - timedelta(milliseconds=1))


# --- the job ----------------------------------------------------------------------------------


def job_state(status: object) -> JobState:
    """Map a status value, compared case-insensitively: success-like values are done,
    failure-like values failed, and anything else (IN_PROGRESS, unknown) still running."""
    text = str(status or "").strip().lower().replace("-", "_").replace(" ", "_")
    if text in _DONE:
        return JobState.DONE
    if text in _FAILED or text.startswith(("fail", "error", "cancel")):
        return JobState.FAILED
    return JobState.RUNNING


def job_id(answer: t.Mapping[str, t.Any]) -> str | None:
    """The `_id` of a POST or GET answer (the only thing tying the two together)."""
    value = answer.get("_id")
    return str(value) if value not in (None, "") else None


def poll_delays(
    initial: float, *, growth: float = POLL_GROWTH, ceiling: float = MAX_POLL_SECONDS
) -> Iterator[float]:
    """Seconds to wait before each status GET: `initial`, then growing by `growth` up to
    `ceiling` (never shorter than `initial`)."""
    delay = max(initial, 0.0)
    while True:
        yield delay
        delay = max(initial, min(delay * growth, ceiling))


def failure_detail(answer: t.Mapping[str, t.Any]) -> str:
    """What a failed job says about itself: its status and any message it carries."""
    parts = [f"status {answer.get('status')!r}"]
    for key in ("message", "msg", "error", "reason"):
        if answer.get(key):
            parts.append(str(answer[key])[:200])
    logs = answer.get("statusLogs")
    if isinstance(logs, list) and logs:
        parts.append(str(logs[-1])[:200])
    return "; ".join(parts)


# --- the result -------------------------------------------------------------------------------


def _counter(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def parse_period(value: object) -> datetime:
    """A bucket's `date` (ISO 8601, `Z`); a zone-less value is UTC."""
    if not isinstance(value, str) or not value.strip():
        raise SummaryFormatError(f"a period has no date: {value!r}")
    text = value.strip().replace("Z", "+00:00")
    if len(text) == 10:  # a bare date
        text += "T00:00:00+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Python 3.10 takes only 3 or 6 fraction digits; drop the fraction and retry.
        head, _, rest = text.partition(".")
        zone = rest[rest.find("+") :] if "+" in rest else ""
        try:
            parsed = datetime.fromisoformat(head + zone)
        except ValueError:
            raise SummaryFormatError(f"a period's date is not ISO 8601: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_result(  # noqa: C901 - one check per documented field of the answer
    answer: t.Mapping[str, t.Any], *, granularity: str, bot_id: str | None = None
) -> list[dict[str, t.Any]]:
    """Records from a finished job's GET answer, one per app group and period.

    `bot_id` (app scope) names the app of every record whatever the group's `bot` says
    ("ALL"); without it (admin scope) the group's `bot` value is the app. A counter the API
    leaves out is null; periods whose counters are all zero are kept.
    """
    response = answer.get("response")
    if not isinstance(response, dict):
        raise SummaryFormatError("the finished job has no 'response' object")
    groups = response.get("data")
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise SummaryFormatError("the result's 'response.data' is not a list")
    records: dict[tuple[str, str], dict[str, t.Any]] = {}
    for group in groups:
        if not isinstance(group, dict):
            raise SummaryFormatError(f"an app group is not an object: {str(group)[:200]}")
        app = bot_id if bot_id is not None else group.get("bot")
        if app in (None, ""):
            raise SummaryFormatError(f"an app group has no 'bot': {str(group)[:200]}")
        periods = group.get("val") or []
        if not isinstance(periods, list):
            raise SummaryFormatError(f"app group {app}: 'val' is not a list")
        for period in periods:
            if not isinstance(period, dict):
                raise SummaryFormatError(f"app group {app}: a period is not an object")
            start = to_iso(parse_period(period.get("date")))
            counters = period.get("val")
            if not isinstance(counters, dict):
                counters = {}
            record: dict[str, t.Any] = {
                "botId": str(app),
                "granularity": granularity,
                "periodStart": start,
            }
            for name in COUNTERS:
                record[name] = _counter(counters.get(name))
            # The same app and period twice (e.g. in app scope): the later one wins, as a
            # target upserting on the key would decide.
            records[(record["botId"], start)] = record
    return sorted(records.values(), key=lambda r: (r["botId"], r["periodStart"]))


def only_apps(
    records: list[dict[str, t.Any]], app_ids: t.Collection[str]
) -> list[dict[str, t.Any]]:
    """An admin job asked for some apps (`streamIds`), which the API may ignore: keep those
    apps' groups when they are there; when no group carries one of their IDs (groups named
    otherwise), keep all."""
    mine = [r for r in records if r["botId"] in app_ids]
    return mine if mine else records


def newest_per_app(
    records: list[dict[str, t.Any]],
    app_ids: t.Sequence[str],
    granularity: str,
    *,
    until: datetime,
) -> list[datetime | None]:
    """`newest_ended_period` for each app of a job, from that app's records; when no record
    carries any of the IDs (one account-wide partition, or groups named otherwise), every app
    gets the newest period of all records."""
    if not any(r["botId"] in app_ids for r in records):
        newest = newest_ended_period(records, granularity, until=until)
        return [newest for _ in app_ids]
    return [
        newest_ended_period([r for r in records if r["botId"] == app], granularity, until=until)
        for app in app_ids
    ]


def in_window(record: t.Mapping[str, t.Any], window: Window) -> bool:
    """Whether a record's period starts inside the window (a bucket before fromDate, or one
    at toDate's edge, would be a partial count)."""
    start = datetime.fromisoformat(record["periodStart"])
    return window.start <= start < window.end


def newest_ended_period(
    records: t.Iterable[t.Mapping[str, t.Any]], granularity: str, *, until: datetime
) -> datetime | None:
    """The start of the newest returned period that ended by `until` (the window's end, never
    past the run's start): an open period still changes and must be asked again."""
    newest: datetime | None = None
    for record in records:
        start = datetime.fromisoformat(record["periodStart"])
        if next_bucket(start, granularity) <= until and (newest is None or start > newest):
            newest = start
    return newest

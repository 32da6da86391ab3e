"""The Billing Usage Summary API of the emulator: asynchronous report jobs over the same
generated sessions as the detail endpoint, in their least convenient plausible form. This
module owns the paths, the request's checks and the jobs' lifecycle; what a job reports is
computed in `summary_report.py`.

- POST `.../billingsessionsummary` starts a job; GET `.../billingsessionsummary/status?type=summary`
  shows the quota holder's job, naming none: only `_id` ties the two together.
- A job stays `IN_PROGRESS` for `summary_polls` GETs, then answers `success` with the result
  inline (or `FAILED` with `summary_fail`). With `summary_foreign_polls`, a second client starts
  a job of its own right after each POST and the next GETs show that job, finished, with other
  numbers: a client that does not compare `_id`s reads the wrong result.
- Counters per unit come from the sessions' `billingSessionType`; `requests` is a deterministic
  number per session. A session is counted in the UTC bucket of its billingSessionStartDateTime
  (`summary_bucket_by` "end" switches to billingSessionEndDateTime), when that instant lies
  within [fromDate, toDate] (both inclusive); the bucket holding fromDate is labelled by its
  start, as the vendor's hourly example shows 10:00 for a fromDate of 10:10.
- Day and month results list every bucket of the range, zeros included; hourly results skip
  empty hours (`summary_hourly_gaps`), as the vendor's hourly example does.
- More than 90 dates between fromDate and toDate (both counted) is a 400.
- `summary_admin_path` decides which account-wide path exists: "bots" (the curl examples),
  "plain" (the endpoint tables) or "both"; the other one answers 404.
- `summary_discrepancies`: [{botId, day, unit, delta}] shifts a counter of the bucket holding
  that day, so the summary disagrees with the detail rows there (reconciliation demos).
- `summary_hang`: jobs never finish. `summary_fail` and `summary_hang` spare the first
  `summary_trouble_after` jobs (since start), so a run can fail half-way.
- `summary_throttle_polls`: the first N status GETs of each job answer 429 (quota spent by
  other integrations), with Retry-After when `retry_after` is on.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_kore_billing.sandbox.summary_report import (
    UNIT_COUNTERS,
    Filters,
    bucket_start,
    finished,
    iso_now,
    report,
)
from tap_kore_billing.sandbox.wire import ApiError, epoch_bounds, parse_api_date

if TYPE_CHECKING:
    from tap_kore_billing.sandbox.data import Session

APP_SUMMARY = re.compile(r"/api/public/bot/([^/]+)/billingsessionsummary(/status)?")
ADMIN_SUMMARY = {
    "/api/public/bots/billingsessionsummary": "bots",
    "/api/public/billingsessionsummary": "plain",
}
MAX_DATES = 90
PERIODS = {"date_day_hour": "hour", "date_day": "day", "date_month": "month"}
THROTTLED_MESSAGE = (
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."
)
# What another client's job adds to every counter, so reading it as ours shows.
FOREIGN_OFFSET = 1000


class SummaryRequestError(Exception):
    """An error answer: (status, message)."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


@dataclass
class Job:
    """One report job; `answer` is its finished GET answer."""

    id: str
    polls_left: int
    fail: bool
    answer: dict[str, Any]
    foreign: Job | None = None
    foreign_polls_left: int = 0
    polls: int = 0
    created: str = ""
    hang: bool = False
    throttle_left: int = 0


@dataclass
class Route:
    """Which summary endpoint a path is: the quota holder's app (None: admin) and POST/GET."""

    path: str
    bot_id: str | None
    status: bool
    admin_variant: str | None = None


@dataclass
class SummaryStats:
    posts: int = 0
    gets: int = 0
    by_holder: dict[str, dict[str, int]] = field(default_factory=dict)


def route(path: str) -> Route | None:
    """The summary endpoint a path names, or None when it is not one."""
    match = APP_SUMMARY.fullmatch(path)
    if match is not None:
        return Route(path, match.group(1), bool(match.group(2)))
    for base, variant in ADMIN_SUMMARY.items():
        if path == base:
            return Route(path, None, False, variant)
        if path == base + "/status":
            return Route(path, None, True, variant)
    return None


class SummaryDesk:
    """Jobs per quota holder and the POSTs and GETs counted per holder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._started = 0
        self.stats = SummaryStats()

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = SummaryStats()

    def stats_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "posts": self.stats.posts,
                "gets": self.stats.gets,
                "by_holder": {k: dict(v) for k, v in self.stats.by_holder.items()},
            }

    def _count(self, holder: str, method: str) -> None:
        with self._lock:
            if method == "POST":
                self.stats.posts += 1
            else:
                self.stats.gets += 1
            per = self.stats.by_holder.setdefault(holder, {"POST": 0, "GET": 0})
            per[method] = per.get(method, 0) + 1

    def _new_id(self) -> str:
        with self._lock:
            return f"ds-{next(self._ids):08x}-{threading.get_ident() % 65536:04x}"

    # -- the endpoints ---------------------------------------------------------------------

    def start_job(
        self,
        holder: str,
        body: dict[str, Any],
        *,
        bots: list[str],
        group_name: str | None,
        sessions: list[Session],
        knobs: dict[str, Any],
    ) -> dict[str, Any]:
        """POST: validate the filters, compute the result, answer like the vendor's example.

        `bots` are the apps the job covers; `group_name` labels the single group when the job
        does not group by app ("ALL")."""
        self._count(holder, "POST")
        filters = _filters(body)
        groups = report(sessions, bots, group_name, filters, knobs, offset=0)
        job_id = self._new_id()
        created = iso_now()
        answer = finished(job_id, groups, failed=False)
        with self._lock:
            self._started += 1
            troubled = self._started > knobs["summary_trouble_after"]
        job = Job(
            job_id,
            knobs["summary_polls"],
            knobs["summary_fail"] and troubled,
            answer,
            created=created,
            hang=knobs["summary_hang"] and troubled,
            throttle_left=knobs["summary_throttle_polls"],
        )
        if knobs["summary_foreign_polls"]:
            other = report(sessions, bots, group_name, filters, knobs, offset=FOREIGN_OFFSET)
            foreign_id = self._new_id()
            job.foreign = Job(foreign_id, 0, False, finished(foreign_id, other, failed=False))
            job.foreign_polls_left = knobs["summary_foreign_polls"]
        with self._lock:
            self._jobs[holder] = job
        return {
            "reportId": f"rp-{job_id[3:]}",
            "status": "IN_PROGRESS",
            "percentageComplete": 0,
            "orgId": "o-sandbox",
            "createdBy": "u-sandbox",
            "jobType": "BILLINGSESSIONS_API",
            "action": "QUERY",
            "statusLogs": [],
            "_id": job_id,
            "lMod": created,
            "createdOn": created,
            "__v": 0,
        }

    def status(self, holder: str, query: str) -> dict[str, Any]:
        """GET: the holder's job as it stands (or another client's, see the module doc)."""
        self._count(holder, "GET")
        if "type=summary" not in query.split("&"):
            raise SummaryRequestError(400, "Query parameter type=summary is required")
        with self._lock:
            job = self._jobs.get(holder)
            if job is None:
                raise SummaryRequestError(404, "No billing session summary job found")
            if job.throttle_left > 0:
                job.throttle_left -= 1
                raise SummaryRequestError(429, THROTTLED_MESSAGE)
            if job.foreign is not None and job.foreign_polls_left > 0:
                job.foreign_polls_left -= 1
                return job.foreign.answer
            job.polls += 1
            if job.hang or job.polls_left > 0:
                job.polls_left = max(job.polls_left - 1, 0)
                done = job.polls / (job.polls + job.polls_left + 1)
                return {
                    "_id": job.id,
                    "status": "IN_PROGRESS",
                    "percentageComplete": int(done * 100),
                    "modifiedOn": iso_now(),
                }
            if job.fail:
                return {
                    "_id": job.id,
                    "status": "FAILED",
                    "modifiedOn": iso_now(),
                    "statusLogs": [{"msg": "Report generation failed", "ts": iso_now()}],
                }
            return job.answer


def _filters(body: dict[str, Any]) -> Filters:
    """Granularity, units, inclusive epoch bounds and the first bucket; 400 when invalid."""
    try:
        from_dt = parse_api_date("fromDate", body.get("fromDate"))
        to_dt = parse_api_date("toDate", body.get("toDate"))
    except ApiError as exc:
        raise SummaryRequestError(exc.status, exc.msg) from None
    if from_dt > to_dt:
        raise SummaryRequestError(400, "fromDate must not be later than toDate")
    if (to_dt.date() - from_dt.date()).days + 1 > MAX_DATES:
        raise SummaryRequestError(400, "Date range must not exceed 90 days (Max: 90 days)")
    period = body.get("groupByPeriod", "date_day")
    if period not in PERIODS:
        raise SummaryRequestError(
            400, f"Invalid groupByPeriod '{period}': use date_month, date_day or date_day_hour"
        )
    units = body.get("unitType")
    if isinstance(units, str):
        units = [units]
    if not isinstance(units, list) or not units or any(u not in UNIT_COUNTERS for u in units):
        raise SummaryRequestError(
            400, "Invalid unitType: use request, session, alert, proactive, conversations"
        )
    granularity = PERIODS[period]
    lo, hi = epoch_bounds(from_dt, to_dt)
    first = bucket_start(int(from_dt.timestamp()), granularity)
    return Filters(granularity, units, lo, hi, first)


def parse_body(raw_body: bytes) -> dict[str, Any]:
    """The POST body as an object, or a 400."""
    try:
        body = json.loads(raw_body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SummaryRequestError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SummaryRequestError(400, "Request body must be a JSON object")
    return body


def group_by_bot(body: dict[str, Any]) -> bool:
    """`groupByBot` (or the table's `groupByApp`): "yes"/"no", any case; default "no"."""
    value = body.get("groupByBot", body.get("groupByApp", "no"))
    text = str(value).strip().lower()
    if text not in ("yes", "no", "true", "false"):
        raise SummaryRequestError(400, f"Invalid groupByBot '{value}': use yes or no")
    return text in ("yes", "true")


def selected_bots(body: dict[str, Any], known: list[str], *, only_known: bool) -> list[str]:
    """The apps an admin job covers: `streamIds` when sent, else every app of the account."""
    stream_ids = body.get("streamIds")
    if not stream_ids:
        return list(known)
    if not isinstance(stream_ids, list) or not all(isinstance(s, str) for s in stream_ids):
        raise SummaryRequestError(400, "streamIds must be a list of app IDs")
    unknown = [s for s in stream_ids if s not in known]
    if unknown and only_known:
        raise SummaryRequestError(403, f"App {unknown[0]} is not accessible with these credentials")
    return [b for b in known if b in stream_ids]

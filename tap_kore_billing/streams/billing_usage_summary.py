"""The billing_usage_summary stream: counters per app and period from the asynchronous usage
summary report job (POST to start it, GET `.../status` until it is done), bookmarked per
partition. What is decided without I/O lives in `tap_kore_billing.usage_summary`."""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_kore_billing.client import ApiRequestError, KoreBillingStream, describe_failure
from tap_kore_billing.datetimes import parse_setting_datetime, to_api_timestamp, to_iso
from tap_kore_billing.errors import TapKoreBillingError
from tap_kore_billing.parallel import run_parallel
from tap_kore_billing.partitions import ACCOUNT_WIDE, Partition
from tap_kore_billing.usage_summary import (
    GROUP_BY_PERIOD,
    UNIT_TYPES,
    JobState,
    SummaryFormatError,
    bucket_ceiling,
    failure_detail,
    in_window,
    job_id,
    job_state,
    newest_per_app,
    only_apps,
    parse_result,
    plan_summary_windows,
    poll_delays,
    request_range,
)

if t.TYPE_CHECKING:
    from tap_kore_billing.windows import Window

REPLICATION_KEY = "periodStart"
BOT_SUMMARY_PATH = "/api/public/bot/{bot_id}/billingsessionsummary"
ADMIN_SUMMARY_PATH = "/api/public/bots/billingsessionsummary"
# The vendor's endpoint tables show the account-wide path without "/bots".
LEGACY_ADMIN_SUMMARY_PATH = "/api/public/billingsessionsummary"
STATUS_SUFFIX = "/status?type=summary"


@dataclass(frozen=True)
class SummaryPlan:
    """What one run asks in one series of jobs: for one app (`bot` scope), or for every
    partition of the account at once (`admin` scope: the apps of `bot_ids` grouped by app, or
    the whole account); its windows, oldest first, and each partition's bookmark."""

    partitions: tuple[Partition, ...]
    windows: list[Window]
    bookmarks: tuple[datetime | None, ...]

    @property
    def first(self) -> Partition:
        return self.partitions[0]

    @property
    def app_ids(self) -> list[str]:
        return [p.bot_id for p in self.partitions if p.bot_id != ACCOUNT_WIDE]

    def __str__(self) -> str:
        if len(self.partitions) == 1:
            return str(self.first)
        return "botId=" + ",".join(self.app_ids)


@dataclass(frozen=True)
class JobDone:
    """A worker finished a window's job: all its records were emitted before this event."""

    plan: SummaryPlan
    window: Window
    periods: int
    outside: int
    # The newest ended period returned, per partition of the plan (None: none returned).
    newest_ended: list[datetime | None]
    job: str
    polls: int
    seconds: float


class BillingUsageSummaryStream(KoreBillingStream):
    """Usage counters per app, granularity and period, bookmarked per partition."""

    name = "billing_usage_summary"
    # Records leave parse_result already shaped like the schema.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    primary_keys: t.ClassVar[list[str]] = ["botId", "granularity", "periodStart"]
    replication_key = REPLICATION_KEY
    is_sorted = False
    # The summary API has no channel filter.
    partition_by_channel = False
    schema = StreamSchema(SchemaDirectory(resources.files("tap_kore_billing") / "schemas"))

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._admin_path = ADMIN_SUMMARY_PATH
        self._holder_locks: dict[str, threading.Lock] = {}
        self._holder_locks_lock = threading.Lock()

    @cached_property
    def granularity(self) -> str:
        return str(self.config["summary_granularity"])

    # --- settings turned into the plan --------------------------------------------------------

    def _plan(self, partitions: tuple[Partition, ...]) -> SummaryPlan:
        """One series of jobs for these partitions, from the earliest point any of them needs
        (asking a partition again for periods it has is harmless: targets upsert)."""
        bookmarks = tuple(self._bookmark(partition) for partition in partitions)
        fetch_to = self.run_started_at
        if self.end_date is not None:
            # A bounded backfill still asks for whole periods.
            fetch_to = min(fetch_to, bucket_ceiling(self.end_date, self.granularity))
        # Recent periods still change (sessions are published late): ask again from
        # `summary_lookback_days` before the bookmark.
        lookback = timedelta(days=int(self.config["summary_lookback_days"]))
        fetch_from = min(
            self.start_date if bookmark is None else max(self.start_date, bookmark - lookback)
            for bookmark in bookmarks
        )
        windows = plan_summary_windows(fetch_from, fetch_to, self.granularity)
        return SummaryPlan(partitions, windows, bookmarks)

    def _bookmark(self, partition: Partition) -> datetime | None:
        state = self.saved_state(partition)
        bookmark = None
        if (
            self.replication_method == "INCREMENTAL"
            and state.get("replication_key") == REPLICATION_KEY
            and state.get("replication_key_value")
        ):
            value = state["replication_key_value"]
            try:
                bookmark = parse_setting_datetime(str(value))
            except ValueError as exc:
                raise TapKoreBillingError(
                    f"state for stream {self.name}, partition {partition}: replication_key_value "
                    f"{value!r} is not an ISO 8601 date-time; fix or clear the state "
                    "(meltano state clear)"
                ) from exc
        return bookmark

    # --- the sync -----------------------------------------------------------------------------

    def check_connection(self) -> str:
        # A report job makes the API compute a summary; the billing_sessions check already
        # proved host, credentials (the same Billing Sessions scope) and every app.
        return f"{self.name} not started (a report job is no connection check)"

    def record_batches(self) -> t.Iterator[list[dict[str, t.Any]]]:
        """Records of every partition, a job's result at a time; apps run in parallel."""
        partitions = self.kore_partitions
        if partitions and partitions[0].scope == "bot":
            groups: list[tuple[Partition, ...]] = [(partition,) for partition in partitions]
        else:
            # The account is one quota holder and one job groups its apps (`groupByBot`).
            groups = [tuple(partitions)]
        plans = []
        for group in groups:
            plan = self._plan(group)
            if plan.windows:
                plans.append(plan)
            else:
                self.logger.info(
                    "Usage summary partition %s: nothing to ask (bookmark %s)",
                    plan,
                    ", ".join(b.isoformat() if b else "none" for b in plan.bookmarks),
                )
        total = sum(len(plan.windows) for plan in plans)
        done = periods_so_far = polls = 0
        started = time.monotonic()
        workers = int(self.config["max_workers"])
        events: t.Iterator[list[dict[str, t.Any]] | JobDone] = run_parallel(
            plans, self._fetch_partition, workers=workers
        )
        for event in events:
            if isinstance(event, list):
                yield event
                continue
            self._finish_window(event)
            done += 1
            periods_so_far += event.periods
            polls += event.polls
            self.logger.info(
                "Usage summary partition %s window %d/%d %s: %d periods (%d outside the window "
                "skipped), job %s, %d status checks, %.1f s; %d periods so far",
                event.plan,
                done,
                total,
                event.window,
                event.periods,
                event.outside,
                event.job,
                event.polls,
                event.seconds,
                periods_so_far,
            )
        self.log_summary(
            periods_so_far,
            time.monotonic() - started,
            f"{done} jobs with {polls} status checks for "
            f"{sum(len(plan.partitions) for plan in plans)} partitions",
        )

    def _fetch_partition(self, plan: SummaryPlan) -> t.Iterator[list[dict[str, t.Any]] | JobDone]:
        # In app scope the partition's app names every record, whatever "bot" says ("ALL").
        fixed_bot = plan.first.bot_id if plan.first.scope == "bot" else None
        apps = plan.app_ids
        for window in plan.windows:
            started = time.monotonic()
            answer, our_job, polls = self._run_job(plan, window)
            try:
                records = parse_result(answer, granularity=self.granularity, bot_id=fixed_bot)
            except SummaryFormatError as exc:
                raise TapKoreBillingError(
                    f"usage summary partition {plan}, window {window}: cannot read the "
                    f"result of job {our_job}: {exc}"
                ) from exc
            if fixed_bot is None and apps:
                records = only_apps(records, set(apps))
            # A period outside the window would be a partial count: the job did not cover it.
            kept = [r for r in records if in_window(r, window)]
            if kept:
                yield kept
            yield JobDone(
                plan=plan,
                window=window,
                periods=len(kept),
                outside=len(records) - len(kept),
                newest_ended=newest_per_app(
                    kept,
                    [p.bot_id for p in plan.partitions],
                    self.granularity,
                    until=min(window.end, self.run_started_at),
                ),
                job=our_job,
                polls=polls,
                seconds=time.monotonic() - started,
            )

    def _finish_window(self, event: JobDone) -> None:
        """Move each partition's bookmark to its newest ended period returned (never an open
        one, never backwards); every record of the window was written before."""
        if self.replication_method != "INCREMENTAL":
            return
        plan = event.plan
        moved = False
        for partition, bookmark, newest in zip(
            plan.partitions, plan.bookmarks, event.newest_ended, strict=True
        ):
            if newest is None or (bookmark is not None and newest <= bookmark):
                continue
            state = self.state_manager.get_context_state(partition.context)
            current = state.get("replication_key_value")
            new_value = to_iso(newest)
            if state.get("replication_key") == REPLICATION_KEY and current and current >= new_value:
                continue
            state["replication_key"] = REPLICATION_KEY
            state["replication_key_value"] = new_value
            moved = True
        if moved:
            self.write_state_after_bookmarks()

    # --- the job ------------------------------------------------------------------------------

    def _holder_lock(self, holder: str) -> threading.Lock:
        with self._holder_locks_lock:
            return self._holder_locks.setdefault(holder, threading.Lock())

    def _job_body(self, plan: SummaryPlan, window: Window) -> dict[str, t.Any]:
        first, last = request_range(window)
        body: dict[str, t.Any] = {
            "fromDate": to_api_timestamp(first),
            "toDate": to_api_timestamp(last),
            "unitType": list(UNIT_TYPES),
            "groupByBot": "no" if plan.first.scope == "bot" else "yes",
            "groupByPeriod": GROUP_BY_PERIOD[self.granularity],
        }
        if plan.first.scope != "bot" and plan.app_ids:
            body["streamIds"] = plan.app_ids
        return body

    def _run_job(self, plan: SummaryPlan, window: Window) -> tuple[dict[str, t.Any], str, int]:
        """Start a job and poll until it is done: (the finished answer, its `_id`, GETs made).

        The status GET names no job, so only one job runs per quota holder at a time, and only
        an answer carrying the `_id` this run's POST got is read.
        """
        timeout = float(self.config["summary_timeout_seconds"])
        body = self._job_body(plan, window)
        with self._holder_lock(plan.first.quota_holder):
            started, base = self._start_job(plan, window, body)
            ours = job_id(started)
            if ours is None:
                raise TapKoreBillingError(
                    f"usage summary partition {plan}, window {window}: the API's answer "
                    "to starting the job carries no _id, so its result cannot be told from "
                    "another job's"
                )
            deadline = time.monotonic() + timeout
            polls = 0
            last_status = started.get("status")
            if job_state(last_status) is JobState.FAILED:
                raise TapKoreBillingError(
                    f"usage summary job failed: partition {plan}, window {window}: "
                    f"{failure_detail(started)} (job {ours}, at its start); re-run later"
                )
            others: set[str] = set()
            for delay in poll_delays(float(self.config["summary_poll_seconds"])):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(delay, remaining))
                answer = self._call(plan, window, "GET", base + STATUS_SUFFIX, None)
                polls += 1
                shown = job_id(answer)
                if shown != ours:
                    # Another client's job (or an older one): never ours to read.
                    if shown is not None and shown not in others:
                        others.add(shown)
                        self.logger.info(
                            "Usage summary partition %s window %s: the status shows job %s, "
                            "not ours (%s); waiting",
                            plan,
                            window,
                            shown,
                            ours,
                        )
                    continue
                last_status = answer.get("status")
                state = job_state(last_status)
                if state is JobState.DONE:
                    return answer, ours, polls
                if state is JobState.FAILED:
                    raise TapKoreBillingError(
                        f"usage summary job failed: partition {plan}, window {window}: "
                        f"{failure_detail(answer)} (job {ours}); re-run later"
                    )
        shown_other = (
            f"; the status showed other jobs ({', '.join(sorted(others))}): another client "
            "may be running usage summary reports for the same app or account"
            if others
            else ""
        )
        raise TapKoreBillingError(
            f"usage summary job timed out: partition {plan}, window {window}: still "
            f"{last_status!r} after {timeout:g} s and {polls} status checks (job {ours}); raise "
            f"summary_timeout_seconds or re-run later{shown_other}"
        )

    def _start_job(
        self, plan: SummaryPlan, window: Window, body: dict[str, t.Any]
    ) -> tuple[dict[str, t.Any], str]:
        """POST the job; (the answer, the path whose `/status` shows it)."""
        if plan.first.scope == "bot":
            path = BOT_SUMMARY_PATH.format(bot_id=plan.first.bot_id)
            return self._call(plan, window, "POST", path, body), path
        path = self._admin_path
        try:
            return self._call(plan, window, "POST", path, body, fallback=True), path
        except _NotFoundError:
            self.logger.info(
                "%s answered 404; trying the account-wide path of the endpoint tables, %s",
                ADMIN_SUMMARY_PATH,
                LEGACY_ADMIN_SUMMARY_PATH,
            )
            self._admin_path = path = LEGACY_ADMIN_SUMMARY_PATH
            return self._call(plan, window, "POST", path, body), path

    def _call(
        self,
        plan: SummaryPlan,
        window: Window,
        method: str,
        path: str,
        body: dict[str, t.Any] | None,
        *,
        fallback: bool = False,
    ) -> dict[str, t.Any]:
        what = "starting the job" if method == "POST" else "checking the job"
        try:
            return self.request_json(method, path, body, plan.first.quota_holder)
        except ApiRequestError as exc:
            if fallback and exc.response.status_code == 404 and path == ADMIN_SUMMARY_PATH:
                raise _NotFoundError from exc
            msg = (
                f"request failed: usage summary partition {plan}, window {window}, "
                f"{what}: {describe_failure(exc)}"
            )
            raise TapKoreBillingError(msg) from exc
        except (RetriableAPIError, requests.RequestException) as exc:
            msg = (
                f"request failed after {self.backoff_max_tries()} tries: usage summary "
                f"partition {plan}, window {window}, {what}: {describe_failure(exc)}"
            )
            raise TapKoreBillingError(msg) from exc


class _NotFoundError(Exception):
    """The `/bots` account-wide path does not exist on this host."""

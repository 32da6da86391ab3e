"""The billing_usage_summary stream: counters per app and period from the asynchronous usage
summary report job, bookmarked per partition. The job's HTTP lives in `summary/job.py`; what is
decided without I/O in `summary/report.py`."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_kore_billing.core.datetimes import to_api_timestamp
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.core.partitions import ACCOUNT_WIDE, Partition
from tap_kore_billing.core.windows import Window
from tap_kore_billing.core.words import counted
from tap_kore_billing.state.bookmarks import advance_period_bookmark, period_bookmark
from tap_kore_billing.streams.base import KoreBillingStream, Records
from tap_kore_billing.summary.job import SummaryJobs
from tap_kore_billing.summary.report import (
    GROUP_BY_PERIOD,
    UNIT_TYPES,
    SummaryFormatError,
    bucket_ceiling,
    in_window,
    newest_per_app,
    only_apps,
    parse_result,
    plan_summary_windows,
    request_range,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_kore_billing.client.parallel import Pause

REPLICATION_KEY = "periodStart"


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
    def holder(self) -> str:
        return self.first.quota_holder

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


class BillingUsageSummaryStream(KoreBillingStream[SummaryPlan, JobDone]):
    """Usage counters per app, granularity and period, bookmarked per partition."""

    name = "billing_usage_summary"
    primary_keys: t.ClassVar[list[str]] = ["botId", "granularity", "periodStart"]
    replication_key = REPLICATION_KEY
    # The summary API has no channel filter.
    partition_by_channel = False
    partition_shapes = (frozenset({"botId"}),)
    schema = StreamSchema(SchemaDirectory(resources.files("tap_kore_billing") / "schemas"))

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._done = self._periods = self._polls = self._partitions = 0
        self._done_per_plan: dict[int, int] = {}

    @cached_property
    def granularity(self) -> str:
        return str(self.config["summary_granularity"])

    @cached_property
    def jobs(self) -> SummaryJobs:
        return SummaryJobs(
            self.api,
            self.logger,
            poll_seconds=float(self.config["summary_poll_seconds"]),
            timeout=float(self.config["summary_timeout_seconds"]),
        )

    # --- plan ---------------------------------------------------------------------------------

    def plan_work(self) -> list[SummaryPlan]:
        partitions = self.kore_partitions
        if partitions and partitions[0].scope == "bot":
            groups: list[tuple[Partition, ...]] = [(partition,) for partition in partitions]
        else:
            # The account is one quota holder and one job groups its apps (`groupByBot`).
            groups = [tuple(partitions)]
        plans = []
        for group in groups:
            plan = self._plan(group)
            bookmarks = ", ".join(b.isoformat() if b else "none" for b in plan.bookmarks)
            if plan.windows:
                plans.append(plan)
                span = Window(plan.windows[0].start, plan.windows[-1].end)
                self.plan_notes[str(plan)] = f"asked {span} (bookmark {bookmarks})"
            else:
                self.plan_notes[str(plan)] = f"nothing to ask (bookmark {bookmarks})"
        self._partitions = sum(len(plan.partitions) for plan in plans)
        return plans

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
        if self.replication_method != "INCREMENTAL":
            return None
        try:
            return period_bookmark(self.saved_state(partition), REPLICATION_KEY)
        except ValueError as exc:
            raise TapKoreBillingError(
                f"state for stream {self.name}, partition {partition}: {exc}; fix or clear the "
                "state (meltano state clear)"
            ) from exc

    # --- fetch --------------------------------------------------------------------------------

    def fetch(self, plan: SummaryPlan) -> Iterator[Records | JobDone | Pause]:
        # In app scope the partition's app names every record, whatever "bot" says ("ALL").
        fixed_bot = plan.first.bot_id if plan.first.scope == "bot" else None
        apps = plan.app_ids
        for window in plan.windows:
            started = time.monotonic()
            where = f"partition {plan}, window {window}"
            answer, our_job, polls = self.jobs.run(
                self._job_body(plan, window),
                bot_id=fixed_bot,
                holder=plan.first.quota_holder,
                where=where,
            )
            try:
                records = parse_result(answer, granularity=self.granularity, bot_id=fixed_bot)
            except SummaryFormatError as exc:
                raise TapKoreBillingError(
                    f"usage summary {where}: cannot read the result of job {our_job}: {exc}"
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

    # --- bookmarks ----------------------------------------------------------------------------

    def window_done(self, event: JobDone) -> None:
        self._move_bookmarks(event)
        self.progress.window_done(str(event.plan), records=event.periods, requests=1 + event.polls)
        self._done += 1
        self._periods += event.periods
        self._polls += event.polls
        done_here = self._done_per_plan[id(event.plan)] = (
            self._done_per_plan.get(id(event.plan), 0) + 1
        )
        self.logger.debug(
            "Usage summary partition %s window %d/%d %s: %s (%d outside the window "
            "skipped), job %s, %s, %.1f s; %s so far",
            event.plan,
            done_here,
            len(event.plan.windows),
            event.window,
            counted(event.periods, "period"),
            event.outside,
            event.job,
            counted(event.polls, "status check"),
            event.seconds,
            counted(self._periods, "period"),
        )

    def _move_bookmarks(self, event: JobDone) -> None:
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
            moved = advance_period_bookmark(state, REPLICATION_KEY, newest) or moved
        if moved:
            self.write_state_after_bookmarks()

    def finish(self, records: int, seconds: float) -> None:
        self.log_summary(
            records,
            seconds,
            f"{counted(self._done, 'job')} with {counted(self._polls, 'status check')} for "
            f"{counted(self._partitions, 'partition')}",
        )

    def check_connection(self) -> str:
        # A report job makes the API compute a summary; the billing_sessions check already
        # proved host, credentials (the same Billing Sessions scope) and every app.
        return f"{self.name} not started (a report job is no connection check)"

"""The billing_sessions stream: each partition's date windows, their pages, and a bookmark per
partition moved after every complete window."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_kore_billing.client.api import FallbackPath
from tap_kore_billing.client.api_errors import RequestFailedError
from tap_kore_billing.client.page_size import PageSize
from tap_kore_billing.client.parallel import Pause
from tap_kore_billing.core.datetimes import parse_setting_datetime, to_api_timestamp, to_iso
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.core.partitions import ACCOUNT_WIDE, Partition
from tap_kore_billing.core.windows import Window, plan_windows
from tap_kore_billing.core.words import counted
from tap_kore_billing.sessions.paging import pages
from tap_kore_billing.sessions.records import SessionRecords
from tap_kore_billing.sessions.window_rows import Key, WindowRows
from tap_kore_billing.state.bookmarks import PartitionBookmark
from tap_kore_billing.state.run_bookmarks import RunBookmarks, retire_inherited
from tap_kore_billing.streams.base import KoreBillingStream, Records

if t.TYPE_CHECKING:
    from collections.abc import Iterator

REPLICATION_KEY = "billingSessionEndDateTime"
BOT_PATH = "/api/public/bot/{bot_id}/getBillingSessionsDetails"
ADMIN_PATH = "/api/public/bots/getBillingSessionsDetails"
# Older documentation pages show the account-wide path without "/bots".
LEGACY_ADMIN_PATH = "/api/public/getBillingSessionsDetails"


@dataclass(frozen=True)
class PartitionPlan:
    """What one run fetches for a partition: its windows, oldest first, and its bookmark."""

    partition: Partition
    windows: list[Window]
    bookmark: PartitionBookmark

    @property
    def holder(self) -> str:
        return self.partition.quota_holder

    @property
    def app_ids(self) -> list[str]:
        return [] if self.partition.bot_id == ACCOUNT_WIDE else [self.partition.bot_id]


@dataclass(frozen=True)
class WindowDone:
    """A worker finished a window: all its rows were emitted before this event."""

    plan: PartitionPlan
    window: Window
    rows: WindowRows
    requests: int
    seconds: float
    complete: bool = True


class BillingSessionsStream(KoreBillingStream[PartitionPlan, WindowDone]):
    """Every billing session of the configured apps, bookmarked per partition."""

    name = "billing_sessions"
    primary_keys: t.ClassVar[list[str]] = ["billingSessionId"]
    replication_key = REPLICATION_KEY
    schema = StreamSchema(SchemaDirectory(resources.files("tap_kore_billing") / "schemas"))

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._admin_path = FallbackPath(ADMIN_PATH, LEGACY_ADMIN_PATH)
        self._run: RunBookmarks | None = None
        self._windows_done: dict[Partition, int] = {}
        self._busy: list[PartitionPlan] = []

    @cached_property
    def page_size(self) -> PageSize:
        # Read on first use: discovery must work before settings are checked.
        return PageSize(int(self.config["page_size"]), self.api, self.logger)

    @cached_property
    def records_of(self) -> SessionRecords:
        zone_name = str(self.config["api_timezone"])
        return SessionRecords(self.schema["properties"], self.zone, zone_name, self.logger)

    @cached_property
    def _start_iso(self) -> str:
        return to_iso(self.start_date)

    @cached_property
    def _end_iso(self) -> str | None:
        return to_iso(self.end_date) if self.end_date else None

    # --- plan ---------------------------------------------------------------------------------

    def plan_work(self) -> list[PartitionPlan]:
        plans = [self._plan(partition) for partition in self.kore_partitions]
        for plan in plans:
            self.logger.debug(
                "Partition %s: bookmark %s; reading %s",
                plan.partition,
                plan.bookmark.describe(),
                _describe_windows(plan.windows),
            )
            self.plan_notes[str(plan.partition)] = _describe_plan(plan)
        self._run = RunBookmarks(
            {plan.partition: plan.bookmark for plan in plans},
            run_started_at=self.run_started_at,
            lookback=timedelta(hours=float(self.config["lookback_hours"])),
        )
        self._windows_done = dict.fromkeys(self._run.bookmarks, 0)
        self._busy = [plan for plan in plans if plan.windows]
        return self._busy

    def _plan(self, partition: Partition) -> PartitionPlan:
        """The windows this run fetches for a partition, from its bookmark."""
        bookmark = PartitionBookmark()
        if self.replication_method == "INCREMENTAL":
            try:
                bookmark = PartitionBookmark.from_state(
                    self.saved_state(partition), REPLICATION_KEY
                )
            except ValueError as exc:
                raise TapKoreBillingError(
                    f"state for partition {partition}: {exc}; fix or clear the state "
                    "(meltano state clear)"
                ) from exc
        # A start_date moved earlier changes nothing once a bookmark exists.
        lookback = timedelta(hours=float(self.config["lookback_hours"]))
        fetch_to = min(self.run_started_at, self.end_date or self.run_started_at)
        window_days = int(self.config["window_days"])
        windows = [
            window
            for low, high in bookmark.fetch_ranges(
                start_date=self.start_date, fetch_to=fetch_to, lookback=lookback
            )
            for window in plan_windows(low, high, window_days)
        ]
        return PartitionPlan(partition, windows, bookmark)

    # --- fetch --------------------------------------------------------------------------------

    def fetch(self, plan: PartitionPlan) -> Iterator[Records | WindowDone | Pause]:
        """A partition's windows in order: records page by page, a WindowDone after each
        window's last page."""
        partition = plan.partition
        previous_edge: set[Key] = set()
        for window in plan.windows:
            started = time.monotonic()
            rows = WindowRows(window.end, previous_edge, self._start_iso, self._end_iso)
            requests_made = 0
            complete = True
            for page in self._pages(partition, window):
                if isinstance(page, Pause):
                    yield page  # the scheduler may run another partition meanwhile
                    continue
                page_rows, requests_made, cut_short = page
                complete = complete and not cut_short
                batch, repeated = rows.keep(self.records_of.of_page(page_rows, partition))
                if batch:
                    yield batch
                if page_rows and repeated == len(page_rows):
                    # The server sent this window's rows again: paging is not advancing.
                    self.logger.warning(
                        "Partition %s window %s: a page repeated rows already received; "
                        "ending the window here",
                        partition,
                        window,
                    )
                    complete = False
                    break
            yield WindowDone(
                plan, window, rows, requests_made, time.monotonic() - started, complete
            )
            previous_edge = rows.near_edge

    def _pages(
        self, partition: Partition, window: Window
    ) -> Iterator[tuple[list[dict[str, t.Any]], int, bool] | Pause]:
        """Each page of one window (see `paging.pages`), a Pause before each request."""
        pause = Pause(partition.quota_holder)
        where = f"partition {partition}, window {window}"

        def request(skip: int) -> dict[str, t.Any]:
            # The limit is read each time: a refused large page size falls back mid-window.
            return self._request_page(partition, window, limit=self.page_size.limit, skip=skip)

        for page in pages(request, where=where, logger=self.logger):
            if page is None:
                yield pause
            else:
                yield page

    def _request_page(
        self, partition: Partition, window: Window, *, limit: int, skip: int
    ) -> dict[str, t.Any]:
        body: dict[str, t.Any] = {
            "fromDate": to_api_timestamp(window.start),
            "toDate": to_api_timestamp(window.end),
            "limit": limit,
            "skip": skip,
        }
        if partition.channel is not None:
            body["channel"] = partition.channel
        path: str | FallbackPath
        if partition.scope == "bot":
            path = BOT_PATH.format(bot_id=partition.bot_id)
        else:
            path = self._admin_path
            if partition.bot_id != ACCOUNT_WIDE:
                body["botId"] = partition.bot_id
        holder = partition.quota_holder
        return self.api.call(
            "POST",
            path,
            body,
            holder,
            where=f"partition {partition}, window {window}, skip {skip}",
            probe=lambda target: self.page_size.probe(target, body, holder),
        )

    # --- bookmarks ----------------------------------------------------------------------------

    def window_done(self, event: WindowDone) -> None:
        run = t.cast("RunBookmarks", self._run)
        partition, rows = event.plan.partition, event.rows
        if not event.complete and run.hold_back(partition):
            self.logger.warning(
                "Partition %s: window %s was cut short by the API; its bookmark stays "
                "before it and the next run reads it again",
                partition,
                event.window,
            )
        # Every row of the window has been written by now: the bookmark may move.
        moved = run.window_done(
            partition,
            newest_end=parse_setting_datetime(rows.newest_end) if rows.newest_end else None,
            longest=rows.longest,
            read_through=event.window.end,
        )
        if moved is not None:
            self._save_bookmark(partition, moved)
        self._windows_done[partition] += 1
        self.progress.window_done(str(partition), records=rows.written, requests=event.requests)
        self.logger.debug(
            "Partition %s window %d/%d %s: %s, %s, %.1f s "
            "(skipped: %d repeated, %d ending outside start_date..end_date)",
            partition,
            self._windows_done[partition],
            len(event.plan.windows),
            event.window,
            counted(rows.written, "row"),
            counted(event.requests, "request"),
            event.seconds,
            rows.duplicates,
            rows.outside,
        )

    def finish(self, records: int, seconds: float) -> None:
        run = t.cast("RunBookmarks", self._run)
        for partition, bookmark in run.last_word(
            (plan.partition, plan.windows[-1].end)
            for plan in self._busy
            if plan.partition.bot_id not in self.skipped_apps
        ):
            self._save_bookmark(partition, bookmark)
        if not run.held_back:
            self._retire_inherited_bookmarks()
        self.log_summary(records, seconds)
        if run.held_back:
            # Exit 0 would keep a scheduled job green while the window never progresses.
            held = ", ".join(map(str, sorted(run.held_back, key=str)))
            raise TapKoreBillingError(
                f"the API cut short a window of {held} (moreAvailable with no rows, or pages "
                "repeating rows); everything else was extracted and those partitions' "
                "bookmarks stay before the window. Lower window_days so each window holds "
                "fewer sessions, then run again"
            )

    def _save_bookmark(self, partition: Partition, bookmark: PartitionBookmark) -> None:
        if self.replication_method != "INCREMENTAL":
            return
        state = self.state_manager.get_context_state(partition.context)
        bookmark.write_into(state, REPLICATION_KEY)
        self.write_state_after_bookmarks()

    def _retire_inherited_bookmarks(self) -> None:
        if self.replication_method == "INCREMENTAL" and retire_inherited(self.stream_state):
            self.write_state_after_bookmarks()

    # --- --test -------------------------------------------------------------------------------

    def check_connection(self) -> str:
        """One one-row request per partition over the last day."""
        window = Window(self.run_started_at - timedelta(days=1), self.run_started_at)
        read, refused = [], []
        for partition in self.kore_partitions:
            try:
                self._request_page(partition, window, limit=1, skip=0)
                read.append(str(partition))
            except RequestFailedError as exc:
                if not self.apps.skips([partition.bot_id], self.name, exc):
                    raise
                refused.append(str(partition))
        sent = self.api.requests_sent
        skipped = f"; not readable, skipped: {', '.join(refused)}" if refused else ""
        return (
            f"{self.name} read with {self.config['api_scope']} scope at {self.api.api.url_base} "
            f"for {', '.join(read)}{skipped} ({counted(sent, 'request')})"
        )


def _describe_plan(plan: PartitionPlan) -> str:
    if not plan.windows:
        return f"nothing to read (bookmark {plan.bookmark.describe()})"
    span = Window(plan.windows[0].start, plan.windows[-1].end)
    return f"read {span} (bookmark {plan.bookmark.describe()})"


def _describe_windows(windows: list[Window]) -> str:
    if not windows:
        return "nothing to fetch"
    if len(windows) <= 2:
        return f"{len(windows)} window{'s' * (len(windows) > 1)} " + ", ".join(map(str, windows))
    return f"{len(windows)} windows, {windows[0]} ... {windows[-1]}"

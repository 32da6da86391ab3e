"""The billing_sessions stream: partitions, date windows, pages, records and per-window state."""

from __future__ import annotations

import json
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from importlib import resources
from itertools import chain

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_kore_billing.bookmarks import PartitionBookmark
from tap_kore_billing.client import (
    ADMIN_PATH,
    BOT_PATH,
    LEGACY_ADMIN_PATH,
    ApiRequestError,
    KoreBillingStream,
    describe_failure,
)
from tap_kore_billing.concurrency import InFlight
from tap_kore_billing.datetimes import (
    UnparseableDatetimeError,
    api_datetime_to_iso,
    parse_setting_datetime,
    to_api_timestamp,
    to_iso,
)
from tap_kore_billing.errors import TapKoreBillingError
from tap_kore_billing.parallel import Pause, run_parallel
from tap_kore_billing.partitions import ACCOUNT_WIDE, Partition
from tap_kore_billing.window_rows import Key, WindowRows
from tap_kore_billing.windows import Window, plan_windows

REPLICATION_KEY = "billingSessionEndDateTime"
DATETIME_FIELDS = (
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
    "billingSessionStartDateTime",
    "billingSessionEndDateTime",
)
PROGRESS_LOG_SECONDS = 60.0
DOCUMENTED_PAGE_SIZE = 100  # the vendor's examples; its maximum is not documented


@dataclass(frozen=True)
class PartitionPlan:
    """What one run fetches for a partition: its windows, oldest first, and its bookmark."""

    partition: Partition
    windows: list[Window]
    bookmark: PartitionBookmark


@dataclass(frozen=True)
class WindowDone:
    """A worker finished a window: all its rows were emitted before this event."""

    plan: PartitionPlan
    window: Window
    rows: int
    requests: int
    seconds: float
    duplicates: int
    outside: int
    newest_end: str | None = None
    longest: timedelta = timedelta(0)
    complete: bool = True


class BillingSessionsStream(KoreBillingStream):
    """Every billing session of the configured apps, bookmarked per partition."""

    name = "billing_sessions"
    # Records leave _to_record already shaped like the schema (strings or nulls).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    primary_keys: t.ClassVar[list[str]] = ["billingSessionId"]
    replication_key = REPLICATION_KEY
    is_sorted = False
    schema = StreamSchema(SchemaDirectory(resources.files("tap_kore_billing") / "schemas"))

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._admin_path = ADMIN_PATH
        self._reported_extra_fields: set[str] = set()
        self._report_lock = threading.Lock()
        self._fields = tuple(self.schema["properties"])
        self._field_set = frozenset(self._fields)
        self._large_pages_accepted = False
        self._page_probe_lock = threading.Lock()

    @cached_property
    def page_limit(self) -> int:
        """The page size asked for: page_size, unless the server refuses more than 100 (then
        set to 100). Read on first use: discovery must work before settings are checked."""
        return int(self.config["page_size"])

    # --- settings turned into the plan --------------------------------------------------------

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

    @cached_property
    def _start_iso(self) -> str:
        return to_iso(self.start_date)

    @cached_property
    def _end_iso(self) -> str | None:
        return to_iso(self.end_date) if self.end_date else None

    # --- the sync -----------------------------------------------------------------------------

    def record_batches(self) -> t.Iterator[list[dict[str, t.Any]]]:
        """Records of every partition, a page at a time; partitions are fetched in parallel,
        written here."""
        started = time.monotonic()
        plans = [self._plan(partition) for partition in self.kore_partitions]
        for plan in plans:
            self.logger.info(
                "Partition %s: bookmark %s; reading %s",
                plan.partition,
                plan.bookmark.describe(),
                _describe_windows(plan.windows),
            )
        bookmarks = {plan.partition: plan.bookmark for plan in plans}
        lookback_seconds = float(self.config["lookback_hours"]) * 3600
        # The newest session the API has shown for any partition: how far it has published.
        shown = [plan.bookmark.newest_shown for plan in plans if plan.bookmark.newest_shown]
        frontier = min(max(shown), self.run_started_at) if shown else None
        windows_done: dict[Partition, int] = dict.fromkeys(bookmarks, 0)
        records = 0
        # Partitions with a window the API cut short: their bookmark stays before it, so the
        # next run reads it again instead of leaving a gap.
        held_back: set[Partition] = set()
        workers = int(self.config["max_workers"])
        busy = [plan for plan in plans if plan.windows]
        in_flight = InFlight(
            (plan.partition.quota_holder for plan in busy),
            self.limiter.peak_rate(),
            ceiling=workers,
        )
        events: t.Iterator[list[dict[str, t.Any]] | WindowDone] = run_parallel(
            busy,
            self._fetch_partition,
            workers=workers,
            wait_for=self.limiter.wait_for,
            in_flight=in_flight,
        )
        for event in events:
            if isinstance(event, list):
                records += len(event)
                yield event
                continue
            partition = event.plan.partition
            if not event.complete and partition not in held_back:
                held_back.add(partition)
                self.logger.warning(
                    "Partition %s: window %s was cut short by the API; its bookmark stays "
                    "before it and the next run reads it again",
                    partition,
                    event.window,
                )
            if partition not in held_back:
                # Every row of the window has been written by now: the bookmark may move.
                newest_end = parse_setting_datetime(event.newest_end) if event.newest_end else None
                # What other partitions showed during this run stands for what the API had
                # published only while the run is short next to the lookback.
                if (
                    newest_end is not None
                    and (frontier is None or newest_end > frontier)
                    and time.monotonic() - started <= lookback_seconds
                ):
                    frontier = newest_end
                bookmarks[partition] = bookmarks[partition].advanced(
                    newest_end=newest_end,
                    longest=event.longest,
                    read_through=event.window.end,
                    run_started_at=self.run_started_at,
                    frontier=frontier,
                )
                self._save_bookmark(partition, bookmarks[partition])
            windows_done[partition] += 1
            self.logger.info(
                "Partition %s window %d/%d %s: %d rows, %d requests, %.1f s "
                "(skipped: %d repeated, %d ending outside start_date..end_date)",
                partition,
                windows_done[partition],
                len(event.plan.windows),
                event.window,
                event.rows,
                event.requests,
                event.seconds,
                event.duplicates,
                event.outside,
            )
        # Partitions that finished early were checked against the frontier known then; the
        # API's frontier is what this run saw last (a run is short next to publication lags).
        for plan in busy:
            partition = plan.partition
            if partition in held_back or frontier is None:
                continue
            if time.monotonic() - started > lookback_seconds:
                break
            final = bookmarks[partition].advanced(
                newest_end=None,
                longest=timedelta(0),
                read_through=plan.windows[-1].end,
                run_started_at=self.run_started_at,
                frontier=frontier,
            )
            if final != bookmarks[partition]:
                bookmarks[partition] = final
                self._save_bookmark(partition, final)
        if not held_back:
            self._retire_inherited_bookmarks()
        self.log_summary(records, time.monotonic() - started, in_flight.describe())
        if held_back:
            # Exit 0 would keep a scheduled job green while the window never progresses.
            raise TapKoreBillingError(
                f"the API cut short a window of {', '.join(map(str, sorted(held_back, key=str)))}"
                " (moreAvailable with no rows, or pages repeating rows); everything else was "
                "extracted and those partitions' bookmarks stay before the window. Lower "
                "window_days so each window holds fewer sessions, then run again"
            )

    def _retire_inherited_bookmarks(self) -> None:
        """Drop the stream-level bookmark and app-level ones superseded by per-channel ones.

        They were starting points for partitions that had no state of their own; once those
        have theirs, keeping them would start an app (or channel) added later at someone
        else's bookmark instead of start_date.
        """
        if self.replication_method != "INCREMENTAL":
            return
        state = self.stream_state
        entries = state.get("partitions") or []
        changed = False
        if entries and "replication_key_value" in state:
            for key in ("replication_key", "replication_key_value"):
                state.pop(key, None)
            changed = True
        with_channels = {e["context"].get("botId") for e in entries if "channel" in e["context"]}
        kept = [
            e
            for e in entries
            if set(e["context"]) != {"botId"} or e["context"]["botId"] not in with_channels
        ]
        if len(kept) != len(entries):
            state["partitions"] = kept
            changed = True
        if changed:
            self.write_state_after_bookmarks()

    def check_connection(self) -> str:
        """One one-row request per partition over the last day."""
        window = Window(self.run_started_at - timedelta(days=1), self.run_started_at)
        for partition in self.kore_partitions:
            body: dict[str, t.Any] = {
                "fromDate": to_api_timestamp(window.start),
                "toDate": to_api_timestamp(window.end),
                "limit": 1,
                "skip": 0,
            }
            if partition.channel is not None:
                body["channel"] = partition.channel
            self._request_page(partition, window, body)
        partitions = ", ".join(map(str, self.kore_partitions))
        return (
            f"{self.name} read with {self.config['api_scope']} scope at {self.url_base} "
            f"for {partitions} ({self.requests_sent} request{'s' * (self.requests_sent != 1)})"
        )

    def _save_bookmark(self, partition: Partition, bookmark: PartitionBookmark) -> None:
        if self.replication_method != "INCREMENTAL":
            return
        state = self.state_manager.get_context_state(partition.context)
        bookmark.write_into(state, REPLICATION_KEY)
        self.write_state_after_bookmarks()

    def _fetch_partition(
        self, plan: PartitionPlan
    ) -> t.Iterator[list[dict[str, t.Any]] | WindowDone | Pause]:
        """Fetch a partition's windows in order (in a worker thread when partitions run in
        parallel): records page by page, and a WindowDone after each window's last page."""
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
                batch, repeated = rows.keep(self._records_of_page(page_rows, partition))
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
                plan=plan,
                window=window,
                rows=rows.written,
                requests=requests_made,
                seconds=time.monotonic() - started,
                duplicates=rows.duplicates,
                outside=rows.outside,
                newest_end=rows.newest_end or None,
                longest=rows.longest,
                complete=complete,
            )
            previous_edge = rows.near_edge

    def _pages(
        self, partition: Partition, window: Window
    ) -> t.Iterator[tuple[list[dict[str, t.Any]], int, bool] | Pause]:
        """Yield (rows, requests so far, cut short) for each page of one window, following
        moreAvailable, and a Pause before each request. `cut short` is True on an empty page
        that claims more rows."""
        skip = 0
        requests_made = 0
        last_progress = time.monotonic()
        while True:
            body: dict[str, t.Any] = {
                "fromDate": to_api_timestamp(window.start),
                "toDate": to_api_timestamp(window.end),
                # Read each time: a refused large page size falls back to 100 mid-window.
                "limit": self.page_limit,
                "skip": skip,
            }
            if partition.channel is not None:
                body["channel"] = partition.channel
            yield Pause(partition.quota_holder)
            payload = self._request_page(partition, window, body)
            requests_made += 1
            rows = payload.get("sessions") or []
            if not isinstance(rows, list):
                raise TapKoreBillingError(
                    f"partition {partition}, window {window}, skip {skip}: "
                    "the response's 'sessions' is not a list"
                )
            more = payload.get("moreAvailable")
            if not rows:
                if more:
                    self.logger.warning(
                        "Partition %s window %s: the API said moreAvailable but sent no rows "
                        "at skip %d; ending the window here",
                        partition,
                        window,
                        skip,
                    )
                yield rows, requests_made, bool(more)
                return
            yield rows, requests_made, False
            # A server may send fewer rows than asked: advance by what arrived.
            skip += len(rows)
            if more is False:
                return
            # Without a moreAvailable flag, keep going until an empty page.
            if time.monotonic() - last_progress > PROGRESS_LOG_SECONDS:
                self.logger.info(
                    "Partition %s window %s: %d rows fetched so far in %d requests",
                    partition,
                    window,
                    skip,
                    requests_made,
                )
                last_progress = time.monotonic()

    def _request_page(
        self, partition: Partition, window: Window, body: dict[str, t.Any]
    ) -> dict[str, t.Any]:
        if partition.scope == "bot":
            path = BOT_PATH.format(bot_id=partition.bot_id)
        else:
            path = self._admin_path
            if partition.bot_id != ACCOUNT_WIDE:
                body["botId"] = partition.bot_id
        try:
            if body["limit"] > DOCUMENTED_PAGE_SIZE and not self._large_pages_accepted:
                probed = self._probe_large_page(path, body, partition.quota_holder)
                if probed is not None:
                    return probed
            return self.post_page(path, body, partition.quota_holder)
        except ApiRequestError as exc:
            if exc.response.status_code == 404 and path == ADMIN_PATH:
                self.logger.info(
                    "%s answered 404; trying the older account-wide path %s",
                    ADMIN_PATH,
                    LEGACY_ADMIN_PATH,
                )
                self._admin_path = LEGACY_ADMIN_PATH
                return self._request_page(partition, window, body)
            self._raise_request_failure(partition, window, body, exc)
        except (RetriableAPIError, requests.RequestException) as exc:
            self._raise_request_failure(partition, window, body, exc, gave_up=True)

    def _probe_large_page(
        self, path: str, body: dict[str, t.Any], holder: str
    ) -> dict[str, t.Any] | None:
        """Find out whether the server takes a `limit` above the documented 100. A 400 about
        the limit, or a 5xx, falls back to 100 for the rest of the run (`body` is changed, None
        is returned); throttling and network faults are waited out and asked again, since they
        say nothing about the page size. One probe at a time, so at most one request is
        refused however many workers there are."""
        tries = self.backoff_max_tries()
        with self._page_probe_lock:
            for attempt in range(tries):
                if self._large_pages_accepted or self.page_limit <= DOCUMENTED_PAGE_SIZE:
                    # Another worker's probe has settled it meanwhile.
                    body["limit"] = self.page_limit
                    return None
                try:
                    payload = self.post_once(path, body, holder)
                except ApiRequestError as exc:
                    if exc.response.status_code != 400 or "limit" not in str(exc).lower():
                        raise
                    self._fall_back_to_documented_page_size(body, str(exc))
                    return None
                except RetriableAPIError as exc:
                    # (A Response is falsy for error statuses: compare with None.)
                    status = exc.response.status_code if exc.response is not None else 0
                    if status >= 500:
                        self._fall_back_to_documented_page_size(body, str(exc))
                        return None
                    if attempt + 1 == tries:
                        raise  # every try spent: reported like any request that gave up
                    self._wait_before_probing_again(exc.response, attempt, f"HTTP {status}")
                except requests.RequestException as exc:
                    if attempt + 1 == tries:
                        raise
                    self._wait_before_probing_again(None, attempt, type(exc).__name__)
                else:
                    self._large_pages_accepted = True
                    return payload
            return None  # (no tries at all)

    def _wait_before_probing_again(
        self, response: requests.Response | None, attempt: int, cause: str
    ) -> None:
        wait = self.retry_wait(response, attempt)
        with self._counter_lock:
            self.retries += 1
            self.throttled += cause == "HTTP 429"
        self.logger.warning(
            "Retrying in %.2f s after %s (try %d of %d next)",
            wait,
            cause,
            attempt + 2,
            self.backoff_max_tries(),
        )
        time.sleep(wait)

    def _fall_back_to_documented_page_size(self, body: dict[str, t.Any], reason: str) -> None:
        self.logger.warning(
            "The API answered page_size %d with %s; using %d, the documented page size, for "
            "the rest of this run (set page_size to %d to skip this check)",
            body["limit"],
            reason,
            DOCUMENTED_PAGE_SIZE,
            DOCUMENTED_PAGE_SIZE,
        )
        self.page_limit = DOCUMENTED_PAGE_SIZE
        body["limit"] = DOCUMENTED_PAGE_SIZE

    def _raise_request_failure(
        self,
        partition: Partition,
        window: Window,
        body: dict[str, t.Any],
        exc: BaseException,
        *,
        gave_up: bool = False,
    ) -> t.NoReturn:
        tries = f" after {self.backoff_max_tries()} tries" if gave_up else ""
        msg = (
            f"request failed{tries}: partition {partition}, window {window}, "
            f"skip {body['skip']}: {describe_failure(exc)}"
        )
        raise TapKoreBillingError(msg) from exc

    def _fill_from_partition(self, record: dict[str, t.Any], partition: Partition) -> None:
        # Rows that omit the app or channel still belong to the partition that asked for them.
        if record["botId"] is None and partition.bot_id != ACCOUNT_WIDE:
            record["botId"] = partition.bot_id
        if record["channel"] is None and partition.channel is not None:
            record["channel"] = partition.channel

    def _records_of_page(self, rows: list[t.Any], partition: Partition) -> list[dict[str, t.Any]]:
        """A page's rows as records: every schema field (absent ones null), every value a
        string or null, datetimes as ISO 8601 UTC. It runs per session, so what can be checked
        once per page (value types, unknown fields) is checked for the whole page at once."""
        fields, zone = self._fields, self.zone
        convert = api_datetime_to_iso
        records = []
        for row in rows:
            if type(row) is not dict or not row.get("billingSessionId"):
                raise TapKoreBillingError(
                    f"partition {partition}: a session row has no billingSessionId: "
                    f"{str(row)[:200]}"
                )
            get = row.get
            record = {field: get(field) for field in fields}
            for field in DATETIME_FIELDS:
                raw = record[field]
                if raw is None or raw == "":
                    record[field] = None
                    continue
                try:
                    record[field] = convert(raw if type(raw) is str else _as_text(raw), zone)
                except UnparseableDatetimeError as exc:
                    raise TapKoreBillingError(
                        f"record billingSessionId={record['billingSessionId']}: cannot parse "
                        f"{field} value {raw!r} (expected like '03-10-2021 2:05:03 pm' in "
                        f"api_timezone {self.config['api_timezone']})"
                    ) from exc
            if record["botId"] is None or record["channel"] is None:
                self._fill_from_partition(record, partition)
            records.append(record)
        every_value = chain.from_iterable(map(dict.values, records))
        if not _TEXT_OR_NULL.issuperset(map(type, every_value)):
            # Conformed here instead of by the SDK's generic pass.
            for record in records:
                for field, value in record.items():
                    if value is not None and type(value) is not str:
                        record[field] = _as_text(value)
        if not self._field_set.issuperset(chain.from_iterable(rows)):
            self._report_extra_fields(set(chain.from_iterable(rows)))
        return records

    def _report_extra_fields(self, names: set[str]) -> None:
        with self._report_lock:
            new = names - self._field_set - self._reported_extra_fields
            self._reported_extra_fields |= new
        if new:
            self.logger.warning(
                "Schema drift: the API sent fields the schema does not have, not extracted: %s",
                ", ".join(sorted(new)),
            )


def _describe_windows(windows: list[Window]) -> str:
    if not windows:
        return "nothing to fetch"
    if len(windows) <= 2:
        return f"{len(windows)} window{'s' * (len(windows) > 1)} " + ", ".join(map(str, windows))
    return f"{len(windows)} windows, {windows[0]} ... {windows[-1]}"


_TEXT_OR_NULL = frozenset({str, type(None)})


def _as_text(value: object) -> str:
    """A non-string value where the API documents a string: keep it, as text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

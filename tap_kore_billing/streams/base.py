"""The one stream shape: plan each partition's work, fetch it, turn rows into records, advance
a bookmark. A stream says only what differs: its plans (`plan_work`), its fetch (`fetch`, run
in worker threads and scheduled by quota holder), what a finished window does to its bookmarks
(`window_done`) and its last word (`finish`). HTTP lives in `tap_kore_billing.client.api`.

The SDK seams this class relies on (private singer-sdk names;
`tests/unit/streams/test_sdk_seams.py` fails when an SDK release changes them):
- `_sync_records`: no public hook writes a page of records at once (see `run/output.py`);
- `_increment_stream_state`: no public switch stops the SDK from bookmarking by record, which
  is wrong for rows that arrive unordered;
- `_write_state_message`: no public method sends the pending STATE;
- `_stream_version`: the version of RECORD messages in FULL_TABLE mode, set by `sync()`;
- `state_manager.is_flushed`: how the SDK knows a STATE is pending;
- `Tap._state_writer` (set in `tap.py`): no public hook replaces the SDK's `StateWriter`,
  which deep-copies the whole state after every STATE message (several ms each with hundreds
  of partitions, one STATE per finished window); `run/writer.py`'s compares encoded lines.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import typing as t
from datetime import datetime, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo

from singer_sdk import Stream, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_kore_billing.client.api_errors import RequestFailedError
from tap_kore_billing.client.concurrency import InFlight
from tap_kore_billing.client.parallel import Pause, run_parallel
from tap_kore_billing.core.datetimes import UTC, parse_setting_datetime
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.core.partitions import Partition, partitions_from_config
from tap_kore_billing.core.words import counted
from tap_kore_billing.run.output import records_pass_unchanged, write_pages, written_as_read
from tap_kore_billing.run.progress import RunProgress

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_kore_billing.apps.inventory import AppInventory
    from tap_kore_billing.client.api import KoreApi

# SDK lines that this tap replaces with truer ones of its own: the starting bookmark per
# partition (the SDK's names start_date), and one line per failure without a preamble.
_REPLACED_SDK_LINES = (
    "An unhandled error occurred while syncing",
    "Starting incremental sync of",
)

_Plan = t.TypeVar("_Plan")
_Done = t.TypeVar("_Done")
Records = list[dict[str, t.Any]]


def _drop_replaced_sdk_lines(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_REPLACED_SDK_LINES)


class KoreBillingStream(Stream, t.Generic[_Plan, _Done]):
    """What every Kore.ai billing stream shares: settings turned into partitions and dates,
    the API client, the parallel walk over plans, bookmarks written after their records."""

    # Records leave the streams already shaped like the schema.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    is_sorted = False
    # Whether the stream's requests filter by channel (one partition per channel).
    partition_by_channel = True
    # The partition contexts this tap writes into the state (keys of each).
    partition_shapes: t.ClassVar[tuple[frozenset[str], ...]] = (
        frozenset({"botId"}),
        frozenset({"botId", "channel"}),
    )

    def __init__(self, tap: Tap, api: KoreApi, apps: AppInventory) -> None:
        super().__init__(tap)
        self.kore_tap = tap
        self.apps = apps
        # Apps this run skips: linked apps the credentials cannot read.
        self.skipped_apps: set[str] = set()
        # Per partition, what this run sets out to read (for its one INFO line at the end).
        self.plan_notes: dict[str, str] = {}
        self.api = api.calls_for(self.logger)
        self.progress = RunProgress.idle(self.name, self.logger)  # replaced by each run's
        self.logger.addFilter(_drop_replaced_sdk_lines)

    # --- what each stream says ----------------------------------------------------------------

    def plan_work(self) -> list[_Plan]:
        """The run's plans, one per series of requests that must run in order; each has its
        `windows` and the quota `holder` it spends."""
        raise NotImplementedError

    def fetch(self, plan: _Plan) -> Iterator[Records | _Done | Pause]:
        """A plan's records (lists), a `_Done` after each window, a `Pause` before each
        request that spends quota. Runs in a worker thread."""
        raise NotImplementedError

    def window_done(self, event: _Done) -> None:
        """A window's records are all written: move its bookmarks and say so."""
        raise NotImplementedError

    def finish(self, records: int, seconds: float) -> None:
        """After the last window: the stream's summary line (or the error that ends the run)."""
        raise NotImplementedError

    def check_connection(self) -> str:
        """Prove, in a request or two per partition, that this stream can be read; say what
        was checked. Raises TapKoreBillingError with the reason otherwise."""
        raise NotImplementedError

    # --- settings turned into the plan --------------------------------------------------------

    @cached_property
    def run_started_at(self) -> datetime:
        """Bookmarks never move past this instant: later sessions may still be filed."""
        return datetime.now(tz=UTC).replace(microsecond=0)

    @cached_property
    def zone(self) -> tzinfo:
        name = str(self.config["api_timezone"])
        # The fast datetime path recognises the built-in UTC object.
        return UTC if name in ("UTC", "Etc/UTC") else ZoneInfo(name)

    @cached_property
    def kore_partitions(self) -> list[Partition]:
        return partitions_from_config(
            self.config,
            with_channels=self.partition_by_channel,
            bot_ids=self.apps.billing_bot_ids(),
        )

    @cached_property
    def start_date(self) -> datetime:
        return parse_setting_datetime(str(self.config["start_date"]))

    @cached_property
    def end_date(self) -> datetime | None:
        """The explicit `end_date`, if any (a bounded backfill)."""
        value = self.config.get("end_date")
        return parse_setting_datetime(str(value)) if value else None

    @property
    def partitions(self) -> list[dict] | None:
        # Partitions are walked by record_batches itself, so the SDK sees one context-free
        # sync and never replays partitions it finds in old state.
        return None

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # Bookmarks are set by the streams when a whole window is done; no signpost needed.
        return None

    def saved_state(self, partition: Partition) -> dict[str, t.Any]:
        """The partition's state from earlier runs, without creating an empty entry."""
        saved = self.stream_state.get("partitions", [])
        found = next((p for p in saved if p.get("context") == partition.context), None)
        if found is None:
            # The app's bookmark from before `channels` was set, then a stream-level one (a
            # state written by other tools): better a known point than a full re-backfill.
            app_only = {"botId": partition.bot_id}
            found = next((p for p in saved if p.get("context") == app_only), None)
        return found if found is not None else self.stream_state

    def _drop_unrecognised_partitions(self) -> None:
        """Partition entries this tap never writes (another tap's state, a hand edit) match
        none of its partitions: named and dropped, not carried into every later STATE."""
        entries = self.stream_state.get("partitions")
        if not isinstance(entries, list) or not entries:
            return
        kept: list[t.Any] = []
        dropped: list[t.Any] = []
        for entry in entries:
            context = entry.get("context") if isinstance(entry, dict) else entry
            ours = isinstance(context, dict) and frozenset(context) in self.partition_shapes
            (kept if ours else dropped).append(entry if ours else context)
        if not dropped:
            return
        self.logger.warning(
            "State of stream %s: dropped %s of a shape this tap does not write (contexts %s; "
            "expected botId, or botId and channel); those partitions start from their own "
            "bookmarks or start_date",
            self.name,
            counted(len(dropped), "partition entry"),
            json.dumps(dropped, default=str)[:300],
        )
        self.stream_state["partitions"] = kept

    # --- the walk -----------------------------------------------------------------------------

    def record_batches(self) -> Iterator[Records]:
        """Every record of the run, in the lists they arrived in (a page, a job's result);
        bookmarks are written between lists, after the records they cover."""
        started = time.monotonic()
        self._drop_unrecognised_partitions()
        plans = self.plan_work()
        self.apps.reading(p.bot_id for p in self.kore_partitions)
        # Every partition whose quota has room calls at once, up to max_workers in flight.
        say = functools.partial(self.logger.info, "Stream %s: %s", self.name)
        in_flight = InFlight(int(self.config["max_workers"]), on_bound=say)
        events: Iterator[Records | _Done] = run_parallel(
            plans,
            self._fetch_or_skip,
            workers=in_flight.max_workers,
            wait_for=self.api.seconds_until_allowed,
            spent=self.api.spent_by,
            in_flight=in_flight,
        )
        api = self.api.api
        self.progress = RunProgress(
            self.name,
            self.logger,
            windows=sum(len(t.cast("t.Any", plan).windows) for plan in plans),
            holders=len({t.cast("t.Any", plan).holder for plan in plans}),
            requests_per_second=min(api.requests_per_minute / 60, api.requests_per_hour / 3600),
            requests_sent=lambda: self.api.requests_sent,
            notes=self.plan_notes,
        )
        records = 0
        with self.progress:
            for event in events:
                if isinstance(event, list):
                    records += len(event)
                    self.progress.add_records(len(event))
                    yield event
                else:
                    self.window_done(event)
        self.progress.log_partitions()
        if in_flight.peak:
            self.logger.info("Stream %s: %s", self.name, in_flight.describe())
        self.finish(records, time.monotonic() - started)

    def _fetch_or_skip(self, plan: _Plan) -> Iterator[Records | _Done | Pause]:
        """`fetch`, except that a linked app the credentials may not read is skipped (its
        bookmarks stay where they are) rather than ending the run; only a plan of one app can
        be (an admin-scope summary job covers them all)."""
        apps: list[str] = t.cast("t.Any", plan).app_ids
        try:
            yield from self.fetch(plan)
        except RequestFailedError as exc:
            if not self.apps.skips(apps, self.name, exc):
                raise
            self.skipped_apps.update(apps)

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        for batch in self.record_batches():
            yield from batch

    def log_summary(self, records: int, seconds: float, detail: str = "") -> None:
        """The stream's last line: what it cost."""
        calls = self.api
        self.logger.info(
            "Stream %s done: %s, %s, %s (%d throttled by 429)%s in %.1f s",
            self.name,
            counted(records, "record"),
            counted(calls.requests_sent, "request"),
            counted(calls.retries, "retry"),
            calls.throttled,
            f", {detail}" if detail else "",
            seconds,
        )
        # The Singer metric for what the requests cost, as one total: orchestrators read it
        # (the Dagster code location's "requests made").
        with metrics.http_request_counter(self.name, self.name) as requests_made:
            requests_made.increment(calls.requests_sent)

    # --- state and output: the SDK seams ------------------------------------------------------

    def emit_state(self) -> None:
        """Send the STATE if it changed since the last one sent."""
        self._write_state_message()  # seam: no public method sends the pending STATE

    def write_state_after_bookmarks(self) -> None:
        """Send the state once bookmarks moved past records already handed on. As RECORD
        messages those records are out already; in BATCH mode they are not, until their batch
        file is: the SDK writes the state after each BATCH message, so it is left to do so."""
        self.state_manager.is_flushed = False  # seam: marks the STATE pending
        if not self.get_batch_config(self.config):
            self.emit_state()

    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        # Seam: rows arrive unordered, so a bookmark taken from records would not be resumable.
        return

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict, t.Any, t.Any]:
        # Seam: no public hook lets a stream write a page of records at once (run/output.py).
        writer = t.cast("t.Any", self.kore_tap.message_writer)
        if context is None and written_as_read(self, writer, write_messages=write_messages):
            version = self._stream_version  # seam: set by sync() for FULL_TABLE
            yield from write_pages(self, self.record_batches(), writer, version, self.emit_state)
        else:
            yield from super()._sync_records(context, write_messages=write_messages)

    def get_batches(
        self, batch_config: t.Any, context: Context | None = None
    ) -> Iterable[tuple[t.Any, list[str]]]:
        if not records_pass_unchanged(self):
            # singer-sdk fills batch files before stream maps, flattening and property
            # selection apply: hashed user IDs would land in the files as they are.
            raise TapKoreBillingError(
                f"stream {self.name}: batch_config cannot be combined with stream maps, "
                "flattening or deselected properties (singer-sdk writes batch files before "
                "they apply, so a hashed ID would be written as it is); remove batch_config, "
                "or those"
            )
        return super().get_batches(batch_config, context)

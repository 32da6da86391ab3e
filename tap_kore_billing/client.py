"""Base stream: POST requests to the Billing Sessions API with auth, limits, retries and errors."""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
import typing as t
from datetime import datetime, tzinfo
from functools import cached_property
from http import HTTPStatus
from zoneinfo import ZoneInfo

import backoff
import msgspec
import requests
from singer_sdk import RESTStream, Stream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_kore_billing.auth import KoreJWTAuth
from tap_kore_billing.datetimes import UTC, parse_setting_datetime
from tap_kore_billing.errors import TapKoreBillingError
from tap_kore_billing.limiter import RollingLimiter
from tap_kore_billing.partitions import Partition, partitions_from_config
from tap_kore_billing.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context, Record

BOT_PATH = "/api/public/bot/{bot_id}/getBillingSessionsDetails"
ADMIN_PATH = "/api/public/bots/getBillingSessionsDetails"
# Older documentation pages show the account-wide path without "/bots".
LEGACY_ADMIN_PATH = "/api/public/getBillingSessionsDetails"

MAX_RETRY_AFTER_SECONDS = 3600.0  # the hourly quota rolls within an hour
MAX_BACKOFF_SECONDS = 300.0
QUOTA_WAIT_LOG_SECONDS = 5.0
# A connection test's tries, timeout and longest wait: it answers within about a minute.
CHECK_TRIES = 3
CHECK_TIMEOUT_SECONDS = 20.0
CHECK_MAX_WAIT_SECONDS = 5.0
JITTER_FRACTION = 0.1  # spreads retries of parallel workers without changing the wait much
RETRIED_ERRORS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

ADVICE = {
    HTTPStatus.BAD_REQUEST: "the API rejected the request; check start_date, end_date, "
    "window_days and channels",
    HTTPStatus.UNAUTHORIZED: "check client_id/client_secret (or auth_token) and that the app "
    "has the Billing Sessions API scope",
    HTTPStatus.FORBIDDEN: "the credentials may not read this app or scope; check bot_ids, "
    "api_scope and the app's API scopes",
    HTTPStatus.NOT_FOUND: "check api_url and bot_ids",
}


_LIMITER_LOCK = threading.Lock()
_decode = msgspec.json.Decoder().decode  # about twice as fast as json.loads on a page


class InvalidResponseBodyError(RetriableAPIError):
    """A 2xx answer whose body is not the JSON object the API sends (e.g. cut off in transit)."""


def api_error_message(response: requests.Response) -> str:
    """The API's own `errors[].msg` text, or a short excerpt of the body."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:200].split()) or response.reason or ""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        msgs = [str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in body["errors"]]
        return "; ".join(msgs)
    return json.dumps(body)[:200]


def retry_after_seconds(response: requests.Response | None, now: float | None = None) -> float:
    """Seconds a `Retry-After` header asks for (delta seconds or an HTTP date); 0 if absent."""
    if response is None:
        return 0.0
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0.0
        seconds = when.timestamp() - (now if now is not None else time.time())
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def jittered(wait: float) -> float:
    """The wait plus up to JITTER_FRACTION of it: never shorter, never much longer."""
    return wait * (1 + random.uniform(0, JITTER_FRACTION))  # noqa: S311 - not a secret


# SDK lines that this tap replaces with truer ones of its own: the starting bookmark per
# partition (the SDK's names start_date), and one line per failure without a preamble.
_REPLACED_SDK_LINES = (
    "An unhandled error occurred while syncing",
    "Starting incremental sync of",
)


def _drop_replaced_sdk_lines(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_REPLACED_SDK_LINES)


class KoreBillingStream(RESTStream):
    """What every Kore.ai billing stream shares: settings turned into partitions and dates,
    auth, the per-quota-holder limiter, retries and error messages. Each stream walks its own
    partitions in `get_records` and keeps one bookmark per partition."""

    http_method = "POST"
    # Set by `--test`: a connection check should answer in seconds, not after a sync's retries.
    checking_connection = False
    # Whether the stream's requests filter by channel (one partition per channel).
    partition_by_channel = True

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._sessions = threading.local()
        self._counter_lock = threading.Lock()
        self.requests_sent = self.retries = self.throttled = 0
        super().__init__(*args, **kwargs)
        self.logger.addFilter(_drop_replaced_sdk_lines)

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
        return partitions_from_config(self.config, with_channels=self.partition_by_channel)

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
        # Partitions are walked by get_records itself, so the SDK sees one context-free sync
        # and never replays partitions it finds in old state.
        return None

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # Bookmarks are set by the streams when a whole window is done; no signpost needed.
        return None

    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        # Rows arrive unordered, so a bookmark taken from records would not be resumable.
        return

    # --- records ------------------------------------------------------------------------------

    def record_batches(self) -> t.Iterator[list[dict[str, t.Any]]]:
        """Every record of the run, in the lists they arrived in (a page, a job's result);
        bookmarks are written between lists, after the records they cover."""
        raise NotImplementedError

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        for batch in self.record_batches():
            yield from batch

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        """The SDK's record loop, done a list at a time when its per-record steps would change
        nothing: no stream map but the identity, every property selected, no child streams, no
        record limit. Any of those set, the SDK's own loop runs instead.

        Per record, the SDK's loop deselects properties, conforms types, runs the stream maps,
        builds a message object and encodes it alone: more time than the tap's own work."""
        if not self._output_is_records_as_read(context, write_messages):
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        writer = t.cast("BufferedMsgSpecWriter", self._tap.message_writer)
        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        with record_counter, timer:
            record_counter.with_context({})
            timer.with_context({})
            self._write_starting_replication_value(None)
            written = 0
            every = self.STATE_MSG_FREQUENCY
            for batch in self.record_batches():
                # The SDK's loop also repeats the STATE after every `every` records: so here.
                for part in _split_at_multiples(batch, written, every):
                    writer.write_records(self.name, part, self._stream_version)
                    self.state_manager.is_flushed = False
                    record_counter.increment(len(part))
                    written += len(part)
                    if written % every == 0:
                        self._write_state_message()
                    yield from part
            if self._get_state_partition_context(None) is None:
                self._finalize_state(self.get_context_state(None))
        self._finalize_state(self.stream_state)
        self._write_state_message()

    def write_state_after_bookmarks(self) -> None:
        """Send the state once bookmarks moved past records already handed on. As RECORD
        messages those records are out already; in BATCH mode they are not, until their batch
        file is: the SDK writes the state after each BATCH message, so it is left to do so."""
        self.state_manager.is_flushed = False
        if not self.get_batch_config(self.config):
            self._write_state_message()

    def _output_is_records_as_read(self, context: Context | None, write_messages: bool) -> bool:
        """Whether the SDK's per-record steps would write each record exactly as read."""
        return (
            write_messages
            and context is None
            and self.selected
            and self.ABORT_AT_RECORD_COUNT is None
            and not self.child_streams
            and isinstance(self._tap.message_writer, BufferedMsgSpecWriter)
            and self._records_pass_unchanged()
        )

    def _records_pass_unchanged(self) -> bool:
        """No stream map but the identity, no flattening, every property selected, no type
        conformance and no post-processing: records leave as `record_batches` made them."""
        maps = self.stream_maps
        return (
            type(self).post_process is Stream.post_process
            and self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
        )

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        if not self._records_pass_unchanged():
            # singer-sdk fills batch files before stream maps, flattening and property
            # selection apply: hashed user IDs would land in the files as they are.
            raise TapKoreBillingError(
                f"stream {self.name}: batch_config cannot be combined with stream maps, "
                "flattening or deselected properties (singer-sdk writes batch files before "
                "they apply, so a hashed ID would be written as it is); remove batch_config, "
                "or those"
            )
        return super().get_batches(batch_config, context)

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

    # --- requests -----------------------------------------------------------------------------

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> KoreJWTAuth:  # type: ignore[override]
        return KoreJWTAuth(
            client_id=self.config.get("client_id"),
            client_secret=self.config.get("client_secret"),
            auth_token=self.config.get("auth_token"),
        )

    @property
    def requests_session(self) -> requests.Session:
        # One session per worker thread: requests does not promise a shared one is safe.
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    @cached_property
    def limiter(self) -> RollingLimiter:
        # One budget per quota holder for the whole run: every stream spends the same quota.
        with _LIMITER_LOCK:
            shared = getattr(self._tap, "_kore_limiter", None)
            if shared is None:
                shared = RollingLimiter(
                    [
                        (int(self.config["requests_per_minute"]), 60.0),
                        (int(self.config["requests_per_hour"]), 3600.0),
                    ],
                    on_wait=self._log_quota_wait,
                )
                self._tap._kore_limiter = shared  # type: ignore[attr-defined]
            return t.cast("RollingLimiter", shared)

    def _log_quota_wait(self, holder: str, seconds: float) -> None:
        # Short waits pace every request at the quota; only a long pause needs explaining.
        if seconds >= QUOTA_WAIT_LOG_SECONDS:
            self.logger.info(
                "Waiting %.0f s for the quota of %s (requests_per_minute %s, requests_per_hour %s)",
                seconds,
                "the account" if holder == "account" else f"app {holder}",
                self.config["requests_per_minute"],
                self.config["requests_per_hour"],
            )

    @property
    def timeout(self) -> float:  # type: ignore[override]
        configured = float(self.config["request_timeout"])
        return min(configured, CHECK_TIMEOUT_SECONDS) if self.checking_connection else configured

    def backoff_max_tries(self) -> int:
        configured = int(self.config["retry_attempts"])
        return min(configured, CHECK_TRIES) if self.checking_connection else configured

    def request_decorator(self, func: t.Callable) -> t.Callable:
        # backoff's own log lines ("Backing off _post_once(...)", "Giving up ...") would repeat
        # ours and print function internals; backoff_handler logs each retry once instead.
        return backoff.on_exception(
            self.backoff_wait_generator,
            RETRIED_ERRORS,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=None,
            logger=None,
        )(func)

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """The waits `retry_wait` gives, one per failed try, for the backoff decorator."""
        attempt = 0
        exception = yield  # type: ignore[misc]  # backoff primes the generator first
        while True:
            exception = yield self.retry_wait(getattr(exception, "response", None), attempt)
            attempt += 1

    def retry_wait(self, response: requests.Response | None, attempt: int) -> float:
        """Seconds to wait after failed try `attempt` (0-based): the server's `Retry-After`
        (honoured exactly) when it sends one, else exponential with a little jitter."""
        asked = retry_after_seconds(response)
        if asked > 0:
            wait = asked
        else:
            initial = float(self.config["retry_initial_delay"])
            wait = jittered(min(initial * 2**attempt, MAX_BACKOFF_SECONDS))
        if self.checking_connection:
            wait = min(wait, CHECK_MAX_WAIT_SECONDS)  # a check answers in seconds
        return wait

    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        throttled = response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        with self._counter_lock:
            self.retries += 1
            self.throttled += throttled
        cause = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
        self.logger.warning(
            "Retrying in %.2f s after %s (try %d of %d next)",
            details.get("wait") or 0.0,
            cause,
            int(details.get("tries") or 0) + 1,
            self.backoff_max_tries(),
        )

    def check_connection(self) -> str:
        """Prove, in a request or two per partition, that this stream can be read; say what
        was checked. Raises TapKoreBillingError with the reason otherwise."""
        raise NotImplementedError

    def log_summary(self, records: int, seconds: float, detail: str = "") -> None:
        """The stream's last line: what it cost."""
        self.logger.info(
            "Stream %s done: %d records, %d requests, %d retries (%d throttled by 429)%s in %.1f s",
            self.name,
            records,
            self.requests_sent,
            self.retries,
            self.throttled,
            f", {detail}" if detail else "",
            seconds,
        )

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"HTTP {status}: {api_error_message(response)}", response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(f"HTTP {status}: {api_error_message(response)}")

    def post_page(self, path: str, body: dict[str, t.Any], holder: str) -> dict[str, t.Any]:
        """POST one page request, waiting for the quota and retrying what is transient.

        Raises:
            FatalAPIError: 4xx answers other than 429 (the response is attached).
            RetriableAPIError: still failing after the last try.
            requests.RequestException: network failures after the last try.
        """
        return self.request_json("POST", path, body, holder)

    def request_json(
        self, method: str, path: str, body: dict[str, t.Any] | None, holder: str
    ) -> dict[str, t.Any]:
        """One API call (POST with a JSON body, or GET without), waiting for the quota and
        retrying what is transient; the answer's JSON object. Raises like `post_page`."""
        return t.cast("dict[str, t.Any]", self._retrying_request(method, path, body, holder))

    def post_once(self, path: str, body: dict[str, t.Any], holder: str) -> dict[str, t.Any]:
        """One try, no retries: for probing what the server accepts."""
        return self._request_once("POST", path, body, holder)

    @cached_property
    def _retrying_request(self) -> t.Callable[..., dict[str, t.Any]]:
        return self.request_decorator(self._request_once)  # type: ignore[arg-type,return-value]

    def _request_once(
        self, method: str, path: str, body: dict[str, t.Any] | None, holder: str
    ) -> dict[str, t.Any]:
        with self._counter_lock:
            self.requests_sent += 1
        with self.limiter.slot(holder):
            response = self.requests_session.request(
                method,
                self.url_base + path,
                json=body,
                headers={"Content-Type": "application/json", "User-Agent": self.user_agent},
                auth=self.authenticator,
                timeout=self.timeout,
            )
        if response.status_code >= HTTPStatus.BAD_REQUEST:
            try:
                self.validate_response(response)
            except FatalAPIError as exc:
                raise ApiRequestError(response) from exc
        try:
            payload = _decode(response.content)
        except msgspec.DecodeError as exc:
            raise InvalidResponseBodyError("the response body is not valid JSON", response) from exc
        if not isinstance(payload, dict):
            raise InvalidResponseBodyError("the response body is not a JSON object", response)
        return payload


def _split_at_multiples(
    batch: list[dict[str, t.Any]], before: int, every: int
) -> t.Iterator[list[dict[str, t.Any]]]:
    """`batch` in parts that end where the running count (`before` + what was yielded)
    reaches a multiple of `every`."""
    start = 0
    while start < len(batch):
        end = start + every - (before + start) % every
        yield batch[start:end]
        start = end


class ApiRequestError(FatalAPIError):
    """A 4xx answer that retrying cannot fix; keeps the response for the error message."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {api_error_message(response)}")
        self.response = response


def describe_failure(exc: BaseException) -> str:
    """One line for a request that failed for good: status, the API's message, what to do."""
    response = getattr(exc, "response", None)
    if response is not None:
        status = response.status_code
        text = f"HTTP {status}: {api_error_message(response)}"
        advice = ADVICE.get(HTTPStatus(status)) if status in HTTPStatus._value2member_map_ else None
        if advice:
            text += f" ({advice})"
        return text
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectionError):
        text += " (no answer from the host: check api_url and that the host is reachable)"
    return text

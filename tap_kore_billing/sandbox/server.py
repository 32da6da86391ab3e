"""A local HTTP emulator of Kore.ai's Billing Sessions API, in its least convenient plausible form.

Where the vendor's documentation is silent the sandbox picks the reading that is hardest on a
client: `total` counts the page, `limit` is capped silently, a date-only `toDate` means midnight,
rows come in a stable but shuffled order, and quota/jti are consumed before faults strike.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

from tap_kore_billing.sandbox.apps import APP_KNOBS, AppsRoute, Inventory
from tap_kore_billing.sandbox.apps import route as inventory_route
from tap_kore_billing.sandbox.data import Dataset, Index, Session, add_months, dumps
from tap_kore_billing.sandbox.generation import generate
from tap_kore_billing.sandbox.knobs import DATA_KNOBS, RUNTIME_KNOBS, checked, resolve
from tap_kore_billing.sandbox.latency import Latency
from tap_kore_billing.sandbox.summary import (
    Route,
    SummaryDesk,
    SummaryRequestError,
    group_by_bot,
    parse_body,
    route,
    selected_bots,
)
from tap_kore_billing.sandbox.wire import (
    UTC,
    ApiError,
    epoch_bounds,
    errors_body,
    parse_api_date,
)

APP_PATH = re.compile(r"/api/public/bot/([^/]+)/getBillingSessionsDetails")
ADMIN_PATH = "/api/public/bots/getBillingSessionsDetails"
CONTROL_PREFIX = "/__sandbox/"
ACCOUNT_HOLDER = "account"
DEFAULT_LIMIT = 100
MAX_TOKEN_AHEAD = 3600
# Idle keep-alive connections are closed like Node's default keepAliveTimeout would.
KEEPALIVE_TIMEOUT = 5.0
CACHE_SIZE = 32
# Arrival times kept for `arrivals()`: enough for any benchmark, bounded for a long demo.
MAX_ARRIVALS = 500_000


MINUTE_MESSAGE = (
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."
)
HOUR_MESSAGE = "You've exceeded the per-hour rate limit. Please wait for sometime before retrying."
CREDENTIALS_MESSAGE = "Invalid SDK credentials"


@dataclass
class Reply:
    """A response to send, or `drop` to close the connection without one."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    drop: bool = False


def _error_reply(error: ApiError) -> Reply:
    return Reply(error.status, errors_body(error.msg, error.code), dict(error.headers))


def _non_negative_int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return value


# What a row listed in `corrupt_ids` carries instead of its billingSessionEndDateTime.
CORRUPT_DATETIME = "31-02-2024 25:61:00 xm"


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.by_status: dict[str, int] = {}
            self.throttled = 0
            self.by_holder: dict[str, int] = {}
            self.rows_served = 0
            self.jti_rejected = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.connections = 0
            self.faults = {"error": 0, "drop": 0, "truncate": 0, "slow": 0}
            self.origin = time.monotonic()
            self.arrivals: dict[str, list[float]] = {}
            self.arrivals_kept = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "by_status": dict(self.by_status),
                "throttled": self.throttled,
                "by_holder": dict(self.by_holder),
                "rows_served": self.rows_served,
                "jti_rejected": self.jti_rejected,
                "max_in_flight": self.max_in_flight,
                "connections": self.connections,
                "faults": dict(self.faults),
            }


class _RateWindow:
    """Rolling one-minute and one-hour windows of accepted calls for one quota holder."""

    def __init__(self) -> None:
        self.minute: deque[float] = deque()
        self.hour: deque[float] = deque()

    def check(self, now: float, per_minute: int | None, per_hour: int | None) -> ApiError | None:
        while self.minute and self.minute[0] <= now - 60:
            self.minute.popleft()
        while self.hour and self.hour[0] <= now - 3600:
            self.hour.popleft()
        hour_full = per_hour is not None and len(self.hour) >= per_hour
        minute_full = per_minute is not None and len(self.minute) >= per_minute
        if not (hour_full or minute_full):
            # Throttled calls are not recorded, so they do not use up the quota.
            self.minute.append(now)
            self.hour.append(now)
            return None
        waits = []
        if hour_full and per_hour is not None:
            waits.append(self.hour[len(self.hour) - per_hour] + 3600 - now)
        if minute_full and per_minute is not None:
            waits.append(self.minute[len(self.minute) - per_minute] + 60 - now)
        error = ApiError(429, HOUR_MESSAGE if hour_full else MINUTE_MESSAGE)
        error.wait_seconds = max(1, math.ceil(max(waits)))
        return error


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are routine (timeouts, benchmarks); keep stderr quiet.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs stall
    # every keep-alive response by ~40 ms.
    disable_nagle_algorithm = True
    server_version = "KoreSandbox/1.0"
    timeout = KEEPALIVE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        stats = self.server.sandbox._stats
        with stats.lock:
            stats.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line."""

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST request."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """Serve a PUT request."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        """Serve a DELETE request."""
        self._dispatch("DELETE")

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            return None
        if size < 0:
            return None
        return self.rfile.read(size)

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        try:
            body = self._read_body()
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        if body is None:
            self.close_connection = True
            self._send(Reply(400, errors_body("Invalid request body length", 400)))
            return
        if path.startswith(CONTROL_PREFIX):
            self._send(sandbox._handle_control(method, path, body))
            return
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        reply = sandbox._handle_api(method, path, self.headers.get("auth"), body, query)
        if reply.drop:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


class Sandbox:
    """The emulated API: generated data, the HTTP server, fault knobs and counters.

    Use as a context manager (or call `start()`/`stop()`); the server listens on
    127.0.0.1 and a free port unless told otherwise.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        summary: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """`options`: any knob of `sandbox/knobs.py` (`summary` is an older spelling of the
        summary_* ones)."""
        values = resolve({**(summary or {}), **options})
        self.seed = values["seed"]
        self.tz = values["tz"]
        self.secret_generated = values["client_secret"] is None
        if self.secret_generated:
            values["client_secret"] = secrets.token_hex(32)
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._knobs: dict[str, Any] = {
            name: value for name, value in values.items() if name in RUNTIME_KNOBS
        }
        self._fault_rng = random.Random(values["fault_seed"])  # noqa: S311 - faults, not secrets
        self._latency = Latency(values["fault_seed"])
        self._summary = SummaryDesk()
        data = {name: values[name] for name in DATA_KNOBS - APP_KNOBS}
        self._data: Dataset = generate(**{**data, "filter_field": values["filter_field"]})
        self._inventory = Inventory(
            seed=self.seed,
            bot_ids=self._data.bot_ids,
            hidden_apps=values["hidden_apps"],
            **{name: values[name] for name in APP_KNOBS},
        )
        self._revealed = False
        self._version = 0
        self._index = Index(self._data.visible, values["filter_field"])
        self._cache: OrderedDict[tuple[Any, ...], list[Session]] = OrderedDict()
        self._stats = _Stats()
        self._rates: dict[str, _RateWindow] = {}
        self._rate_lock = threading.Lock()
        self._jtis: dict[str, float] = {}
        self._jti_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``; only known once started."""
        if self._server is None:
            raise RuntimeError("sandbox is not started")
        host = self._server.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{self._server.server_port}"

    @property
    def client_id(self) -> str:
        """Client ID the JWT's `appId` claim must carry."""
        return str(self._knobs["client_id"])

    @property
    def client_secret(self) -> str:
        """Client secret the JWT must be signed with (HS256)."""
        return str(self._knobs["client_secret"])

    @property
    def bot_ids(self) -> list[str]:
        """App ids, ``st-<uuid>``."""
        return list(self._data.bot_ids)

    @property
    def channels(self) -> list[str]:
        """Channel codes present in the data."""
        return list(self._data.channels)

    @property
    def data_start(self) -> datetime:
        """Start of the base sessions' time range (aware UTC)."""
        return self._data.start

    @property
    def data_end(self) -> datetime:
        """End of the base sessions' time range (aware UTC); late/new sessions sit near it."""
        return self._data.end

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; a no-op when already serving."""
        with self._lock:
            if self._server is not None:
                return self
            self._server = _Server((self._host, self._port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="kore-billing-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def expected(self, bot_id: str | None = None, channel: str | None = None) -> list[dict]:
        """Every visible session matching the filters, oldest start first."""
        with self._lock:
            rows = list(self._data.visible)
        out = []
        for s in rows:
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

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last `reset_stats()`."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters (rate-limit windows and seen jtis are kept)."""
        self._stats.reset()
        self._summary.reset_stats()

    def arrivals(self) -> dict[str, list[float]]:
        """Per quota holder, when each API call arrived (seconds since start or the last
        `reset_stats()`, in arrival order): for checking how a client spreads its calls."""
        stats = self._stats
        with stats.lock:
            return {holder: list(times) for holder, times in stats.arrivals.items()}

    def summary_stats(self) -> dict[str, Any]:
        """Usage summary POSTs and GETs (all, and per quota holder) since the last reset."""
        return self._summary.stats_snapshot()

    def reveal(self) -> int:
        """Make the hidden late and new sessions, and the apps added later with their sessions,
        visible; returns how many sessions were added."""
        with self._lock:
            if self._revealed:
                return 0
            self._revealed = True
            self._inventory.revealed = True
            added = len(self._data.hidden)
            self._data.visible = self._data.visible + self._data.hidden
            self._data.hidden = []
            self._rebuild()
        return added

    def configure(self, **knobs: Any) -> None:
        """Change fault knobs, rate limits, page cap, filter field or credentials at runtime."""
        fixed = sorted(set(knobs) & DATA_KNOBS)
        if fixed:
            raise ValueError(f"cannot change data-shaping options at runtime: {fixed}")
        unknown = sorted(set(knobs) - RUNTIME_KNOBS)
        if unknown:
            raise ValueError(f"unknown options: {unknown}")
        with self._lock:
            old_field = self._knobs["filter_field"]
            self._apply_knobs(knobs)
            if self._knobs["filter_field"] != old_field:
                self._rebuild()

    def info(self) -> dict[str, Any]:
        """What a client needs to connect (never the secret), and the planted audit cases
        when there are any."""
        with self._lock:
            visible = len(self._data.visible)
        shown = {
            "url": self.url,
            "client_id": self.client_id,
            "bot_ids": self.bot_ids,
            "channels": self.channels,
            "visible_sessions": visible,
            "apps": [
                {"botId": app.bot_id, "name": app.name} for app in self._inventory.visible_apps()
            ],
        }
        if self._data.planted:
            shown["audit_cases"] = self.planted_audit_cases()
        return shown

    def planted_audit_cases(self) -> list[dict[str, Any]]:
        """The billing sessions planted to break one billing rule each (the `audit_cases` knob),
        in the order given: finding, app (1-based), botId, day (UTC, ISO), channel,
        koreUserId, conversationSessionId, billingSessionIds (the sessions the finding names;
        for over_counted every session of the conversation), otherBillingSessionId (the
        earlier session an overlap overlaps, else None), addedBillingSessionIds (every row the
        case added) and excessSessions (over_counted: sessions beyond the rule, else 0)."""
        return copy.deepcopy(self._data.planted)

    def apps(self) -> list[dict[str, Any]]:
        """Every app in position order: botId, name, index (1-based), status, and hidden (added
        later: not shown before reveal())."""
        with self._lock:
            return self._inventory.listing()

    def links(self) -> list[dict[str, str]]:
        """The links of apps shown now: parentBotId, linkedBotId, state "published" or
        "configured" (a published link is configured too, so it has both rows)."""
        with self._lock:
            return self._inventory.link_rows()

    @property
    def planted_secret(self) -> str:
        """The text every app's clientSecret in Get Bots contains, for leak checks."""
        return self._inventory.planted_secret

    # -- internals ----------------------------------------------------------------------------

    def _apply_knobs(self, knobs: dict[str, Any]) -> None:
        validated: dict[str, Any] = {name: checked(name, value) for name, value in knobs.items()}
        with self._lock:
            self._knobs.update(validated)
            if "fault_seed" in validated:
                self._fault_rng = random.Random(validated["fault_seed"])  # noqa: S311
                self._latency.reseed(validated["fault_seed"])

    def _rebuild(self) -> None:
        self._index = Index(self._data.visible, self._knobs["filter_field"])
        self._version += 1
        self._cache.clear()

    def _matches(self, bot_ids: tuple[str, ...], lo: int, hi: int, channel: str | None) -> list:
        with self._lock:
            index, version = self._index, self._version
            key = (version, bot_ids, lo, hi, channel)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        found = index.select(bot_ids, lo, hi, channel)
        with self._lock:
            if version == self._version:
                self._cache[key] = found
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return found

    def _count(self, status: str, rows: int = 0) -> None:
        stats = self._stats
        with stats.lock:
            stats.by_status[status] = stats.by_status.get(status, 0) + 1
            stats.rows_served += rows
            if status == "429":
                stats.throttled += 1

    def _authenticate(self, token: str | None, knobs: dict[str, Any]) -> None:
        denied = ApiError(401, CREDENTIALS_MESSAGE, 4002)
        if not token:
            raise denied
        try:
            claims = jwt.decode(
                token.strip(),
                knobs["client_secret"],
                algorithms=["HS256"],
                options={"require": ["sub"]},
            )
        except jwt.PyJWTError:
            raise denied from None
        if claims.get("appId") != knobs["client_id"]:
            raise denied
        if not knobs["enforce_jti"]:
            return
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp - now > MAX_TOKEN_AHEAD:
            raise denied
        jti = claims.get("jti")
        with self._jti_lock:
            reused = not isinstance(jti, str) or not jti or jti in self._jtis
            if not reused:
                if len(self._jtis) > 50_000:
                    self._jtis = {k: v for k, v in self._jtis.items() if v >= now}
                self._jtis[str(jti)] = float(exp)
        if reused:
            with self._stats.lock:
                self._stats.jti_rejected += 1
            raise denied

    def _throttle(self, holder: str, knobs: dict[str, Any]) -> None:
        stats = self._stats
        with stats.lock:
            stats.by_holder[holder] = stats.by_holder.get(holder, 0) + 1
            if stats.arrivals_kept < MAX_ARRIVALS:
                stats.arrivals_kept += 1
                stats.arrivals.setdefault(holder, []).append(time.monotonic() - stats.origin)
        with self._lock:
            throttled = self._knobs["throttle_next"] > 0
            if throttled:
                self._knobs["throttle_next"] -= 1
        if throttled:
            raise ApiError(429, MINUTE_MESSAGE, headers={"Retry-After": "1"})
        per_minute, per_hour = knobs["rate_per_minute"], knobs["rate_per_hour"]
        if per_minute is None and per_hour is None:
            return
        with self._rate_lock:
            window = self._rates.setdefault(holder, _RateWindow())
            error = window.check(time.monotonic(), per_minute, per_hour)
        if error is not None:
            if knobs["retry_after"]:
                error.headers["Retry-After"] = str(error.wait_seconds)
            raise error

    def _page(self, knobs: dict[str, Any], bot_ids: tuple[str, ...], body: dict[str, Any]) -> Reply:
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
            matches = [s for s in matches if self._published(s, knobs)]
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
                b",".join(self._row_blob(s, knobs) for s in page),
                b"]}",
            )
        )
        return Reply(200, payload, rows=len(page))

    @staticmethod
    def _published(session: Session, knobs: dict[str, Any]) -> bool:
        """Whether the API shows a session yet: billing data is published after a delay."""
        now = knobs["clock"] if knobs["clock"] is not None else time.time()
        delay = knobs["publication_delay_hours"]
        # The late ones are a fixed subset: the same sessions are late in every query.
        if session.order < knobs["late_fraction"] * 2**64:
            delay += knobs["late_delay_hours"]
        return session.end + delay * 3600 <= now

    def published_expected(self, **filters: Any) -> list[dict]:
        """`expected()` limited to the sessions the API shows now (see publication knobs)."""
        with self._lock:
            knobs = dict(self._knobs)
            by_id = {s.id: s for s in self._data.visible}
        return [
            row
            for row in self.expected(**filters)
            if self._published(by_id[row["billingSessionId"]], knobs)
        ]

    @staticmethod
    def _row_blob(session: Session, knobs: dict[str, Any]) -> bytes:
        if session.id not in knobs["corrupt_ids"]:
            return session.blob
        return dumps({**session.raw, "billingSessionEndDateTime": CORRUPT_DATETIME})

    def _serve_api(
        self, method: str, path: str, token: str | None, raw_body: bytes, knobs: dict[str, Any]
    ) -> Reply:
        match = APP_PATH.fullmatch(path)
        if match is None and path != ADMIN_PATH:
            raise ApiError(404, f"Cannot {method} {path}")
        if method != "POST":
            raise ApiError(405, f"Method {method} not allowed; use POST")
        self._authenticate(token, knobs)
        known = self._data.bot_ids
        holder = self._scope(match.group(1) if match else None, knobs)
        bot_ids = tuple(known) if match is None else (holder,)
        self._throttle(holder, knobs)
        try:
            body = json.loads(raw_body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        if match is None and body.get("botId") is not None:
            wanted = body["botId"]
            if not isinstance(wanted, str):
                raise ApiError(400, "botId must be a string")
            if knobs["known_apps_only"] and wanted not in known:
                raise ApiError(403, f"App {wanted} is not accessible with these credentials")
            bot_ids = (wanted,)
        return self._page(knobs, bot_ids, body)

    def _scope(self, bot_id: str | None, knobs: dict[str, Any]) -> str:
        """The quota holder of a call once its scope passes: an app's own paths (bot_id) refuse
        apps these credentials cannot read, the account's need the Admin Console scope."""
        if bot_id is None:
            if not knobs["admin_enabled"]:
                raise ApiError(403, "These credentials lack the Admin Console API scope")
            return ACCOUNT_HOLDER
        unknown = knobs["known_apps_only"] and bot_id not in self._data.bot_ids
        if unknown or not self._inventory.readable(bot_id):
            raise ApiError(403, f"App {bot_id} is not accessible with these credentials")
        return bot_id

    def _serve_apps(
        self, where: AppsRoute, method: str, token: str | None, query: str, knobs: dict
    ) -> Reply:
        """Get Bots and Get Linked Apps (sandbox/apps.py), behind the same auth and quota."""
        if method != "GET":
            raise ApiError(405, f"Method {method} not allowed; use GET")
        self._authenticate(token, knobs)
        self._throttle(self._scope(where.bot_id, knobs), knobs)
        with self._lock:
            answer = self._inventory.answer(where, query, knobs["bots_offset"])
        return Reply(200, dumps(answer))

    def _serve_summary(  # noqa: PLR0917 - one call site, beside _serve_api
        self,
        where: Route,
        method: str,
        token: str | None,
        raw_body: bytes,
        query: str,
        knobs: dict[str, Any],
    ) -> Reply:
        """The usage summary endpoints (sandbox/summary.py), behind the same auth and quota."""
        variant, served = where.admin_variant, knobs["summary_admin_path"]
        if variant is not None and served not in ("both", variant):
            raise ApiError(404, f"Cannot {method} {where.path}")
        wanted = "GET" if where.status else "POST"
        if method != wanted:
            raise ApiError(405, f"Method {method} not allowed; use {wanted}")
        self._authenticate(token, knobs)
        known = self._data.bot_ids
        holder = self._scope(where.bot_id, knobs)
        bots = list(known) if where.bot_id is None else [holder]
        self._throttle(holder, knobs)
        try:
            if where.status:
                answer = self._summary.status(holder, query)
            else:
                body = parse_body(raw_body)
                if where.bot_id is None:
                    bots = selected_bots(body, known, only_known=knobs["known_apps_only"])
                with self._lock:
                    sessions = self._data.visible
                answer = self._summary.start_job(
                    holder,
                    body,
                    bots=bots,
                    group_name=None if group_by_bot(body) else "ALL",
                    sessions=sessions,
                    knobs=knobs,
                )
        except SummaryRequestError as exc:
            error = ApiError(exc.status, exc.msg)
            if exc.status == 429 and knobs["retry_after"]:
                error.headers["Retry-After"] = "1"
            raise error from None
        return Reply(200, json.dumps(answer).encode())

    def _handle_api(
        self, method: str, path: str, token: str | None, raw_body: bytes, query: str = ""
    ) -> Reply:
        stats = self._stats
        with stats.lock:
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            with self._lock:
                knobs = dict(self._knobs)
            # The service time before the quota is counted, the cost of the rows after: a
            # gateway that counts a call as it answers, the hardest case for a client.
            self._latency.wait(knobs["latency_seconds"], knobs["latency_jitter"])
            try:
                summary_route = route(path)
                apps_route = inventory_route(path)
                if apps_route is not None:
                    reply = self._serve_apps(apps_route, method, token, query, knobs)
                elif summary_route is None:
                    reply = self._serve_api(method, path, token, raw_body, knobs)
                else:
                    reply = self._serve_summary(
                        summary_route, method, token, raw_body, query, knobs
                    )
            except ApiError as error:
                reply = _error_reply(error)
            if reply.rows:
                self._latency.wait(
                    knobs["latency_per_row_seconds"] * reply.rows, knobs["latency_jitter"]
                )
            if reply.status not in (404, 405):
                reply = self._inject_faults(reply, knobs)
            self._count("dropped" if reply.drop else str(reply.status), reply.rows)
            return reply
        finally:
            with stats.lock:
                stats.in_flight -= 1

    def _inject_faults(self, reply: Reply, knobs: dict[str, Any]) -> Reply:
        # Every roll is drawn on every call, so the fault sequence depends only on fault_seed and
        # the call count, not on which knobs are on. Faults strike after auth and quota have been
        # consumed, as they would behind a real gateway.
        with self._lock:
            rng = self._fault_rng
            drop, error, truncate, slow = (rng.random() for _ in range(4))
            error_status = rng.choice((500, 503))
        faults = self._stats.faults
        if slow < knobs["slow_rate"]:
            with self._stats.lock:
                faults["slow"] += 1
            time.sleep(knobs["slow_seconds"])
        if drop < knobs["drop_rate"]:
            with self._stats.lock:
                faults["drop"] += 1
            return Reply(0, b"", drop=True)
        if error < knobs["error_rate"]:
            with self._stats.lock:
                faults["error"] += 1
            text = "Internal Server Error" if error_status == 500 else "Service Unavailable"
            return Reply(error_status, errors_body(text, error_status))
        if reply.status == 200 and truncate < knobs["truncate_rate"]:
            with self._stats.lock:
                faults["truncate"] += 1
            return Reply(200, reply.body[: len(reply.body) // 2], reply.headers, rows=reply.rows)
        return reply

    def _handle_control(self, method: str, path: str, raw_body: bytes) -> Reply:
        name = path[len(CONTROL_PREFIX) :].strip("/")
        result: Any = {"ok": True}
        try:
            if method == "GET" and name == "stats":
                result = self.stats()
            elif method == "GET" and name == "arrivals":
                result = self.arrivals()
            elif method == "GET" and name == "info":
                result = self.info()
            elif method == "GET" and name == "audit_cases":
                result = self.planted_audit_cases()
            elif method == "POST" and name == "reveal":
                added = self.reveal()
                result = {"revealed": added, "visible_sessions": self.info()["visible_sessions"]}
            elif method == "POST" and name == "reset_stats":
                self.reset_stats()
            elif method == "POST" and name == "configure":
                knobs = json.loads(raw_body or b"{}")
                if not isinstance(knobs, dict):
                    return Reply(400, errors_body("body must be a JSON object of knobs", 400))
                self.configure(**knobs)
            else:
                return Reply(404, errors_body(f"Cannot {method} {path}", 404))
        except ValueError as exc:
            return Reply(400, errors_body(str(exc), 400))
        return Reply(200, json.dumps(result).encode())

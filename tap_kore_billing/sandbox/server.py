"""The emulator's lifecycle and its face to tests: `Sandbox` builds the account (generated
sessions, app inventory, knobs), wires the API's parts together (`api.py`, `gate.py`,
`billing_sessions.py`, `summary.py`, `apps.py`), serves them over HTTP in a thread
(`http_server.py`, with the control endpoint of `control.py`), and answers tests in Python:
what a client should read, the counters, `reveal()` and `configure()`.

The emulator plays the API in its least convenient plausible form: where the vendor's
documentation is silent it picks the reading that is hardest on a client: `total` counts the
page, `limit` is capped silently, a date-only `toDate` means midnight, rows come in a stable but
shuffled order, and quota/jti are consumed before faults strike.
"""

from __future__ import annotations

import copy
import secrets
import threading
from datetime import datetime
from functools import partial
from typing import Any

from tap_kore_billing.sandbox.api import Api
from tap_kore_billing.sandbox.apps import APP_KNOBS, Inventory
from tap_kore_billing.sandbox.billing_sessions import SessionPages, expected_rows, published
from tap_kore_billing.sandbox.control import control
from tap_kore_billing.sandbox.counters import Counters
from tap_kore_billing.sandbox.data import Dataset
from tap_kore_billing.sandbox.generation import generate
from tap_kore_billing.sandbox.http_server import HttpServer
from tap_kore_billing.sandbox.knobs import DATA_KNOBS, RUNTIME_KNOBS, checked, resolve
from tap_kore_billing.sandbox.summary import SummaryDesk


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
        self._pages = SessionPages(self._data.visible, values["filter_field"])
        self._stats = Counters()
        self._api = Api(
            lock=self._lock,
            knobs=self._knobs,
            data=self._data,
            inventory=self._inventory,
            summary_desk=self._summary,
            pages=self._pages,
            counters=self._stats,
            fault_seed=values["fault_seed"],
        )
        self._server: HttpServer | None = None
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
            self._server = HttpServer(
                (self._host, self._port),
                api=self._api,
                control=partial(control, self),
                counters=self._stats,
            )
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
        return expected_rows(rows, bot_id, channel)

    def published_expected(self, **filters: Any) -> list[dict]:
        """`expected()` limited to the sessions the API shows now (see publication knobs)."""
        with self._lock:
            knobs = dict(self._knobs)
            by_id = {s.id: s for s in self._data.visible}
        return [
            row
            for row in self.expected(**filters)
            if published(by_id[row["billingSessionId"]], knobs)
        ]

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
        return self._stats.arrivals_snapshot()

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
            self._pages.rebuild(self._data.visible, self._knobs["filter_field"])
        return added

    def configure(self, **knobs: Any) -> None:
        """Change fault knobs, rate limits, page cap, filter field or credentials at runtime."""
        fixed = sorted(set(knobs) & DATA_KNOBS)
        if fixed:
            raise ValueError(f"cannot change data-shaping options at runtime: {fixed}")
        unknown = sorted(set(knobs) - RUNTIME_KNOBS)
        if unknown:
            raise ValueError(f"unknown options: {unknown}")
        validated: dict[str, Any] = {name: checked(name, value) for name, value in knobs.items()}
        with self._lock:
            old_field = self._knobs["filter_field"]
            self._knobs.update(validated)
            if "fault_seed" in validated:
                self._api.reseed(validated["fault_seed"])
            if self._knobs["filter_field"] != old_field:
                self._pages.rebuild(self._data.visible, self._knobs["filter_field"])

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

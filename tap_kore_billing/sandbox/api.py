"""How the emulator answers one API call: the path picks its endpoint (billing sessions, usage
summary, app inventory), each endpoint checks its method and passes the gate, and around the
answer come the emulated service time, the injected faults and the counters. No HTTP here:
`http_server.py` reads the request and sends what this returns.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from tap_kore_billing.sandbox.apps import route as apps_route
from tap_kore_billing.sandbox.billing_sessions import admin_bots
from tap_kore_billing.sandbox.billing_sessions import parse_body as sessions_body
from tap_kore_billing.sandbox.billing_sessions import route as sessions_route
from tap_kore_billing.sandbox.data import dumps
from tap_kore_billing.sandbox.gate import Gate
from tap_kore_billing.sandbox.latency import Latency
from tap_kore_billing.sandbox.summary import (
    SummaryRequestError,
    group_by_bot,
    selected_bots,
)
from tap_kore_billing.sandbox.summary import parse_body as summary_body
from tap_kore_billing.sandbox.summary import route as summary_route
from tap_kore_billing.sandbox.wire import ApiError, Reply, error_reply

if TYPE_CHECKING:
    from tap_kore_billing.sandbox.apps import AppsRoute, Inventory
    from tap_kore_billing.sandbox.billing_sessions import SessionPages, SessionsRoute
    from tap_kore_billing.sandbox.counters import Counters
    from tap_kore_billing.sandbox.data import Dataset
    from tap_kore_billing.sandbox.summary import Route, SummaryDesk


class Api:
    """The emulated API's endpoints over the account's state, which `Sandbox` owns."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        knobs: dict[str, Any],
        data: Dataset,
        inventory: Inventory,
        summary_desk: SummaryDesk,
        pages: SessionPages,
        counters: Counters,
        fault_seed: int,
    ) -> None:
        """`lock` guards `knobs`, `data` and `inventory`, which change while serving."""
        self._lock = lock
        self._knobs = knobs
        self._data = data
        self._inventory = inventory
        self._summary = summary_desk
        self._pages = pages
        self._counters = counters
        self._gate = Gate(
            counters=counters,
            live_knobs=knobs,
            knobs_lock=lock,
            apps=data.bot_ids,
            inventory=inventory,
            fault_seed=fault_seed,
        )
        self._latency = Latency(fault_seed)

    def reseed(self, fault_seed: int) -> None:
        """Restart the fault rolls and the latency jitter from `fault_seed`."""
        self._gate.reseed(fault_seed)
        self._latency.reseed(fault_seed)

    def handle(
        self, method: str, path: str, token: str | None, raw_body: bytes, query: str = ""
    ) -> Reply:
        """The reply to one call (`token`: its `auth` header), counted."""
        counters = self._counters
        counters.call_started()
        try:
            with self._lock:
                knobs = dict(self._knobs)
            # The service time before the quota is counted, the cost of the rows after: a
            # gateway that counts a call as it answers, the hardest case for a client.
            self._latency.wait(knobs["latency_seconds"], knobs["latency_jitter"])
            try:
                reply = self._route(method, path, token, raw_body, query, knobs)
            except ApiError as error:
                reply = error_reply(error)
            if reply.rows:
                self._latency.wait(
                    knobs["latency_per_row_seconds"] * reply.rows, knobs["latency_jitter"]
                )
            if reply.status not in (404, 405):
                reply = self._gate.inject_faults(reply, knobs)
            counters.answered("dropped" if reply.drop else str(reply.status), reply.rows)
            return reply
        finally:
            counters.call_ended()

    def _route(  # noqa: PLR0917 - private, one call site
        self,
        method: str,
        path: str,
        token: str | None,
        raw_body: bytes,
        query: str,
        knobs: dict[str, Any],
    ) -> Reply:
        apps_where = apps_route(path)
        if apps_where is not None:
            return self._serve_apps(apps_where, method, token, query, knobs)
        summary_where = summary_route(path)
        if summary_where is not None:
            return self._serve_summary(summary_where, method, token, raw_body, query, knobs)
        sessions_where = sessions_route(path)
        if sessions_where is not None:
            return self._serve_sessions(sessions_where, method, token, raw_body, knobs)
        raise ApiError(404, f"Cannot {method} {path}")

    def _serve_sessions(
        self,
        where: SessionsRoute,
        method: str,
        token: str | None,
        raw_body: bytes,
        knobs: dict[str, Any],
    ) -> Reply:
        """Billing sessions (sandbox/billing_sessions.py)."""
        if method != "POST":
            raise ApiError(405, f"Method {method} not allowed; use POST")
        holder = self._gate.admit(token, where.bot_id, knobs)
        body = sessions_body(raw_body)
        if where.bot_id is None:
            bot_ids = admin_bots(body, self._data.bot_ids, only_known=knobs["known_apps_only"])
        else:
            bot_ids = (holder,)
        return self._pages.page(knobs, bot_ids, body)

    def _serve_apps(
        self, where: AppsRoute, method: str, token: str | None, query: str, knobs: dict
    ) -> Reply:
        """Get Bots and Get Linked Apps (sandbox/apps.py)."""
        if method != "GET":
            raise ApiError(405, f"Method {method} not allowed; use GET")
        self._gate.admit(token, where.bot_id, knobs)
        with self._lock:
            answer = self._inventory.answer(where, query, knobs["bots_offset"])
        return Reply(200, dumps(answer))

    def _serve_summary(  # noqa: PLR0917 - private, one call site
        self,
        where: Route,
        method: str,
        token: str | None,
        raw_body: bytes,
        query: str,
        knobs: dict[str, Any],
    ) -> Reply:
        """The usage summary endpoints (sandbox/summary.py)."""
        variant, served = where.admin_variant, knobs["summary_admin_path"]
        if variant is not None and served not in ("both", variant):
            raise ApiError(404, f"Cannot {method} {where.path}")
        wanted = "GET" if where.status else "POST"
        if method != wanted:
            raise ApiError(405, f"Method {method} not allowed; use {wanted}")
        known = self._data.bot_ids
        holder = self._gate.admit(token, where.bot_id, knobs)
        bots = list(known) if where.bot_id is None else [holder]
        try:
            if where.status:
                answer = self._summary.status(holder, query)
            else:
                body = summary_body(raw_body)
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

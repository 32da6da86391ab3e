"""The gate every API call passes before an endpoint answers it, and the faults that strike after:
the JWT check (HS256, `appId`, single-use `jti`), the credentials' scope (the Admin Console
scope for account-wide paths, readable apps for an app's own), the quota holder's rolling
minute and hour windows (429 with Retry-After), `throttle_next`, and the injected faults (5xx,
dropped connections, truncated bodies, slow answers). Every endpoint family uses the same gate,
so auth and quota behave alike whichever path a client calls.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jwt

from tap_kore_billing.sandbox.wire import ApiError, Reply, errors_body

if TYPE_CHECKING:
    from tap_kore_billing.sandbox.apps import Inventory
    from tap_kore_billing.sandbox.counters import Counters

ACCOUNT_HOLDER = "account"
MAX_TOKEN_AHEAD = 3600
# Seen jtis kept before the expired ones are pruned.
MAX_JTIS = 50_000

MINUTE_MESSAGE = (
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."
)
HOUR_MESSAGE = "You've exceeded the per-hour rate limit. Please wait for sometime before retrying."
CREDENTIALS_MESSAGE = "Invalid SDK credentials"


class RateWindow:
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


class Gate:
    """Auth, scope and quotas before an answer; faults after it."""

    def __init__(
        self,
        *,
        counters: Counters,
        live_knobs: dict[str, Any],
        knobs_lock: threading.RLock,
        apps: Sequence[str],
        inventory: Inventory,
        fault_seed: int,
    ) -> None:
        """`live_knobs` (guarded by `knobs_lock`) is where `throttle_next` is spent: a call's
        own snapshot of the knobs would let concurrent calls spend the same one. `apps`: every
        app of the account."""
        self._counters = counters
        self._live_knobs = live_knobs
        self._knobs_lock = knobs_lock
        self._apps = apps
        self._inventory = inventory
        self._rates: dict[str, RateWindow] = {}
        self._rate_lock = threading.Lock()
        self._jtis: dict[str, float] = {}
        self._jti_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._fault_rng = random.Random(fault_seed)  # noqa: S311 - faults, not secrets

    def reseed(self, fault_seed: int) -> None:
        with self._fault_lock:
            self._fault_rng = random.Random(fault_seed)  # noqa: S311

    def admit(self, token: str | None, bot_id: str | None, knobs: dict[str, Any]) -> str:
        """Check the JWT, then the scope of the path (`bot_id` None: account-wide), then the
        quota; returns the quota holder. Quota and jti are spent before any fault strikes."""
        self.authenticate(token, knobs)
        holder = self.scope(bot_id, knobs)
        self.throttle(holder, knobs)
        return holder

    def authenticate(self, token: str | None, knobs: dict[str, Any]) -> None:
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
                if len(self._jtis) > MAX_JTIS:
                    self._jtis = {k: v for k, v in self._jtis.items() if v >= now}
                self._jtis[str(jti)] = float(exp)
        if reused:
            self._counters.jti_reused()
            raise denied

    def scope(self, bot_id: str | None, knobs: dict[str, Any]) -> str:
        """The quota holder of a call once its scope passes: an app's own paths (bot_id) refuse
        apps these credentials cannot read, the account's need the Admin Console scope."""
        if bot_id is None:
            if not knobs["admin_enabled"]:
                raise ApiError(403, "These credentials lack the Admin Console API scope")
            return ACCOUNT_HOLDER
        unknown = knobs["known_apps_only"] and bot_id not in self._apps
        if unknown or not self._inventory.readable(bot_id):
            raise ApiError(403, f"App {bot_id} is not accessible with these credentials")
        return bot_id

    def throttle(self, holder: str, knobs: dict[str, Any]) -> None:
        self._counters.arrived(holder)
        with self._knobs_lock:
            throttled = self._live_knobs["throttle_next"] > 0
            if throttled:
                self._live_knobs["throttle_next"] -= 1
        if throttled:
            raise ApiError(429, MINUTE_MESSAGE, headers={"Retry-After": "1"})
        per_minute, per_hour = knobs["rate_per_minute"], knobs["rate_per_hour"]
        if per_minute is None and per_hour is None:
            return
        with self._rate_lock:
            window = self._rates.setdefault(holder, RateWindow())
            error = window.check(time.monotonic(), per_minute, per_hour)
        if error is not None:
            if knobs["retry_after"]:
                error.headers["Retry-After"] = str(error.wait_seconds)
            raise error

    def inject_faults(self, reply: Reply, knobs: dict[str, Any]) -> Reply:
        # Every roll is drawn on every call, so the fault sequence depends only on fault_seed and
        # the call count, not on which knobs are on. Faults strike after auth and quota have been
        # consumed, as they would behind a real gateway.
        with self._fault_lock:
            rng = self._fault_rng
            drop, error, truncate, slow = (rng.random() for _ in range(4))
            error_status = rng.choice((500, 503))
        if slow < knobs["slow_rate"]:
            self._counters.fault("slow")
            time.sleep(knobs["slow_seconds"])
        if drop < knobs["drop_rate"]:
            self._counters.fault("drop")
            return Reply(0, b"", drop=True)
        if error < knobs["error_rate"]:
            self._counters.fault("error")
            text = "Internal Server Error" if error_status == 500 else "Service Unavailable"
            return Reply(error_status, errors_body(text, error_status))
        if reply.status == 200 and truncate < knobs["truncate_rate"]:
            self._counters.fault("truncate")
            return Reply(200, reply.body[: len(reply.body) // 2], reply.headers, rows=reply.rows)
        return reply

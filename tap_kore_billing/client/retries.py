"""How long to wait before a request is tried again: pure arithmetic, no I/O."""

from __future__ import annotations

import email.utils
import random
import time
import typing as t

if t.TYPE_CHECKING:
    import requests

MAX_RETRY_AFTER_SECONDS = 3600.0  # the hourly quota rolls within an hour
MAX_BACKOFF_SECONDS = 300.0
JITTER_FRACTION = 0.1  # spreads retries of parallel workers without changing the wait much
# A host that refuses every connection (or does not exist) gets retries for this long from
# the first try (a resolver or a load balancer can hiccup), then the run fails on the next
# failed try: about 15 s with the default delays. A mistyped api_url must not cost the minutes
# the full retry_attempts would; a host down for longer is a failed run to retry later.
UNREACHABLE_GIVE_UP_SECONDS = 10.0
# A connection test's tries, timeout and longest wait: it answers within about a minute.
CHECK_TRIES = 3
CHECK_TIMEOUT_SECONDS = 20.0
CHECK_MAX_WAIT_SECONDS = 5.0


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


def retry_wait(
    response: requests.Response | None,
    attempt: int,
    *,
    initial_delay: float,
    checking_connection: bool = False,
) -> float:
    """Seconds to wait after failed try `attempt` (0-based): the server's `Retry-After`
    (honoured exactly) when it sends one, else exponential with a little jitter; a connection
    test never waits long."""
    asked = retry_after_seconds(response)
    wait = asked if asked > 0 else jittered(min(initial_delay * 2**attempt, MAX_BACKOFF_SECONDS))
    return min(wait, CHECK_MAX_WAIT_SECONDS) if checking_connection else wait

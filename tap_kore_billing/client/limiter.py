"""Client-side rolling-window request limits, one budget per quota holder.

Kore.ai counts public API calls per app (app scope) or per account (admin scope) over rolling
minute and hour windows. Waiting here before a call is cheaper than being throttled: a 429
still spends the customer's quota for every other integration. This is a few lines of deque
bookkeeping; a limiter library would add a dependency for no less code here.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class RollingLimiter:
    """Blocks until a call fits under every (count, seconds) limit for its holder.

    A call is counted from the moment its response arrives, not from when it was sent: the
    server counted it somewhere in between, and only the later instant guarantees that this
    client never puts more than `count` calls into any `seconds` span the server can see.
    """

    def __init__(
        self,
        limits: list[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limits = [(count, seconds) for count, seconds in limits if count > 0]
        self._longest = max((seconds for _, seconds in self._limits), default=0.0)
        self._clock = clock
        self._sleep = sleep
        self._calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def peak_rate(self) -> float:
        """Calls a second one holder may sustain over the shortest window (infinite when
        unlimited): the most it can ever use, since a longer window only caps it lower."""
        if not self._limits:
            return float("inf")
        count, seconds = min(self._limits, key=lambda limit: limit[1])
        return count / seconds

    def spent(self, holder: str, at: float) -> int:
        """Calls of `holder` (answered or in flight) in its shortest window as it will stand at
        `at`: how much of its minute it will have used by then."""
        if not self._limits:
            return 0
        seconds = min(seconds for _, seconds in self._limits)
        with self._lock:
            calls = self._calls.get(holder)
            if not calls:
                return 0
            return len(calls) - bisect.bisect_right(calls, at - seconds)

    def delay_for(self, holder: str, now: float) -> float:
        """Seconds until `holder` may call again (0 when it may call now)."""
        calls = self._calls.get(holder)
        if not calls:
            return 0.0
        expired = bisect.bisect_right(calls, now - self._longest)
        del calls[:expired]
        wait = 0.0
        for count, seconds in self._limits:
            if len(calls) >= count:
                # The call `count` places back must leave the window before another fits.
                wait = max(wait, calls[-count] + seconds - now)
        return wait

    def wait_for(self, holder: str) -> float:
        """Seconds until `holder` may call again, now."""
        with self._lock:
            return self.delay_for(holder, self._clock())

    @contextlib.contextmanager
    def slot(
        self, holder: str, on_wait: Callable[[str, float], None] | None = None
    ) -> Iterator[float]:
        """Wait for room, hold it during the call, count the call when it ends; `on_wait`
        hears of each wait before it starts.

        Yields the seconds waited.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self.delay_for(holder, now)
                if wait <= 0:
                    calls = self._calls.setdefault(holder, [])
                    # Reserve at `now` so concurrent callers see the call in flight.
                    bisect.insort(calls, now)
                    break
            if on_wait is not None:
                on_wait(holder, wait)
            self._sleep(wait)
            waited += wait
        try:
            yield waited
        finally:
            with self._lock:
                calls = self._calls[holder]
                index = bisect.bisect_left(calls, now)
                if index < len(calls) and calls[index] == now:
                    del calls[index]
                bisect.insort(calls, self._clock())

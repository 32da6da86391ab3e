"""How many requests the tap keeps in flight: Little's law over the quota holders.

To keep every holder at its quota's pace, the tap needs `rate x latency` requests in flight per
holder (Little's law: in flight = throughput x time each spends in flight). The rate is what the
holder's shortest limit allows (60 a minute: one a second); the latency is observed: the lowest
of the recent request steps (send, answer, page to records), as TCP's BBR takes the lowest round
trip, because queueing inside the tap (two threads wanting the GIL) makes steps longer without
making the API slower, and sizing on the inflated figure would grow the pool that inflates it.

Bounds: a holder's requests go one partition at a time, so it never needs more than its
partitions; at least FLOOR (what a CPU-bound run on a fast network needs to overlap the
tap's work with the API's); at most `ceiling` (`max_workers`), so the tap stays polite to the
host and the pages held in memory stay few whatever the number of apps.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque

FLOOR = 4
# Twice the sustained need: a holder whose minute rolled over may spend a burst, answers
# jitter, and requests sent early in a minute shorten the wait for the next one.
SLACK = 2.0
# Steps remembered for the latency: recent enough to follow the API, many enough to hold a
# step that did not queue in the tap.
SAMPLES = 50


class InFlight:
    """The target number of requests in flight, from the holders and the observed latency.

    The scheduler tells it each job's quota holder (`job_for`, at the job's first request)
    and each request step's duration (`observe`)."""

    def __init__(self, rate_per_second: float, *, ceiling: int, floor: int = FLOOR) -> None:
        self.jobs_per_holder: Counter[str] = Counter()
        self.rate = rate_per_second
        self.ceiling = max(1, ceiling)
        self.floor = min(floor, self.ceiling)
        self._steps: deque[float] = deque(maxlen=SAMPLES)
        self._lock = threading.Lock()
        self.latency: float | None = None
        self.target = self.floor
        self.peak = self.floor

    def job_for(self, holder: str) -> None:
        """One more job (a series of requests in order) spends `holder`'s quota."""
        with self._lock:
            self.jobs_per_holder[holder] += 1

    def needed(self, latency: float) -> int:
        """Requests in flight that keep every holder at its rate with `latency` a request."""
        each = self.rate * latency * SLACK if latency > 0 else 0.0
        need = sum(min(jobs, each) for jobs in self.jobs_per_holder.values())
        return max(self.floor, min(self.ceiling, math.ceil(need)))

    def observe(self, seconds: float) -> int:
        """Record one request step's duration; returns the target in flight."""
        with self._lock:
            self._steps.append(seconds)
            self.latency = min(self._steps)
            self.target = self.needed(self.latency)
            self.peak = max(self.peak, self.target)
            return self.target

    def describe(self) -> str:
        if self.latency is None:
            return f"up to {self.target} requests in flight"
        return (
            f"up to {self.peak} requests in flight (bound {self.ceiling}; "
            f"{self.latency * 1000:.0f} ms a request at best)"
        )

"""What the emulator counts while it serves, for tests and benchmarks to read: requests by status
and by quota holder, rows served, throttled calls, rejected jtis, concurrency, connections,
injected faults and when each call arrived. The HTTP server, the gate and the API's front door
all count here, each under the one lock, so a snapshot is consistent.
"""

from __future__ import annotations

import threading
import time
from typing import Any

# Arrival times kept for `arrivals()`: enough for any benchmark, bounded for a long demo.
MAX_ARRIVALS = 500_000


class Counters:
    """The counters since start or the last `reset()`."""

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

    def arrivals_snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {holder: list(times) for holder, times in self.arrivals.items()}

    def connected(self) -> None:
        with self.lock:
            self.connections += 1

    def call_started(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def call_ended(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def answered(self, status: str, rows: int = 0) -> None:
        """One answer sent: its status ("dropped" for none) and the rows it carried."""
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.rows_served += rows
            if status == "429":
                self.throttled += 1

    def arrived(self, holder: str) -> None:
        """A call that passed auth and scope reached `holder`'s quota."""
        with self.lock:
            self.by_holder[holder] = self.by_holder.get(holder, 0) + 1
            if self.arrivals_kept < MAX_ARRIVALS:
                self.arrivals_kept += 1
                self.arrivals.setdefault(holder, []).append(time.monotonic() - self.origin)

    def jti_reused(self) -> None:
        with self.lock:
            self.jti_rejected += 1

    def fault(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] += 1

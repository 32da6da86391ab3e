"""How many requests the tap keeps in flight, and when that bound, not the quotas, sets the pace.

Each partition sends its requests one after another, and may send the next as soon as its quota
holder's rolling windows have room. So the quotas alone say how many requests should be in
flight at a given moment: every partition that may call, calls. In the steady state that is
Little's law (60 a minute at 300 ms a request: about 0.3 per app); at a minute boundary, when
hundreds of holders' minutes free at once, it is every one of them. A fixed pool sized for the
steady state would make those requests queue behind one another, and each holder's next minute
would then free later too.

What the quotas allow is bounded by what the machine and the API take: `max_workers` requests
at once (one thread and one keep-alive connection each; a page each in memory), never more than
the partitions. When a partition allowed to call waits for a free slot (longer than a thread
hand-off takes: `LATE_SECONDS`) while every slot is busy, that bound decides the pace, and the
run says so once.
"""

from __future__ import annotations

import threading
import typing as t

from tap_kore_billing.core.words import counted

# A wait for a free slot longer than a thread hand-off on a busy machine takes.
LATE_SECONDS = 0.2


def in_flight_bound(max_workers: int, partitions: int) -> int:
    """Requests in flight at most: `max_workers`, and no more than partitions that can use them
    (each sends one request at a time)."""
    return max(1, min(max_workers, partitions))


def bound_decides(*, waited: float, busy_others: int, bound: int) -> bool:
    """Whether a partition that may call, and `waited` seconds for a slot, waited for the bound:
    every other slot was busy and the wait was longer than a hand-off."""
    return waited >= LATE_SECONDS and busy_others >= bound - 1


class InFlight:
    """The requests in flight of one run: their bound, the most at once, and the one line said
    when the bound, not the quotas, sets the pace (`on_bound` hears it)."""

    def __init__(
        self, max_workers: int, *, on_bound: t.Callable[[str], None] | None = None
    ) -> None:
        self.max_workers = max(1, max_workers)
        self.bound = self.max_workers
        self.on_bound = on_bound
        self.peak = 0
        self.bound_decided = False
        self._busy = 0
        self._lock = threading.Lock()

    def plan(self, partitions: int) -> int:
        """The bound for a run of `partitions` (see `in_flight_bound`)."""
        self.bound = in_flight_bound(self.max_workers, partitions)
        return self.bound

    def started(self, waited: float, ready: int) -> None:
        """A slot takes a partition that may call and `waited` seconds for it (`ready`:
        partitions still waiting for a slot)."""
        with self._lock:
            late = bound_decides(waited=waited, busy_others=self._busy, bound=self.bound)
            self._busy += 1
            self.peak = max(self.peak, self._busy)
            first = late and not self.bound_decided
            self.bound_decided = self.bound_decided or late
        if first and self.on_bound is not None:
            self.on_bound(self.bound_line(waited, ready))

    def ended(self) -> None:
        """A slot is free again."""
        with self._lock:
            self._busy -= 1

    def bound_line(self, waited: float, ready: int) -> str:
        return (
            f"max_workers ({self.max_workers}) sets the pace now, not the API quotas: all "
            f"{self.bound} requests allowed in flight are busy while "
            f"{counted(ready + 1, 'partition')} whose quotas have room wait for one (one "
            f"waited {waited:.1f} s); raise max_workers if the API and this machine take more"
        )

    def describe(self) -> str:
        decided = "; the bound set the pace at times" if self.bound_decided else ""
        return f"at most {self.peak} requests in flight (bound {self.bound}){decided}"

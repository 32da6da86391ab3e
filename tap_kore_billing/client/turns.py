"""Which partition sends the next request: the scheduler's line, free of threads and clocks.

Each quota holder (an app, or the account) has a rolling minute: its 61st request may go once
its first has left the minute. So the requests a holder sends in the first seconds of its
minute decide how early that minute frees again; across hundreds of holders, the run ends when
the last holder's minute frees. When more partitions may call than there are requests allowed
in flight, the line therefore puts first the partitions whose holder has spent the least of its
rolling window (a holder in its first seconds), then the one that has waited longest; a
partition whose quota has no room waits apart until it has, and then joins the line with what
its holder will have spent by then.
"""

from __future__ import annotations

import heapq
import itertools
import typing as t

_Item = t.TypeVar("_Item")


class TurnQueue(t.Generic[_Item]):
    """Partitions waiting for their turn to send a request.

    `push(item, ready_at, spent)`: `item` may call from `ready_at` (monotonic seconds), when
    its holder will have `spent` requests in its rolling window. `pop(now)` gives the item whose
    turn it is: among those that may call at `now`, the least spent, then the earliest ready,
    then the first pushed. A partition that must wait does not block the line: the others
    pass it."""

    def __init__(self) -> None:
        self._order = itertools.count()
        # Not yet allowed to call: (ready_at, order, spent, item).
        self._waiting: list[tuple[float, int, int, _Item]] = []
        # Allowed to call: (spent, ready_at, order, item).
        self._ready: list[tuple[int, float, int, _Item]] = []

    def __len__(self) -> int:
        return len(self._waiting) + len(self._ready)

    def push(self, item: _Item, *, ready_at: float, spent: int) -> None:
        heapq.heappush(self._waiting, (ready_at, next(self._order), spent, item))

    def _admit(self, now: float) -> None:
        """Move every partition whose wait is over into the line."""
        while self._waiting and self._waiting[0][0] <= now:
            ready_at, order, spent, item = heapq.heappop(self._waiting)
            heapq.heappush(self._ready, (spent, ready_at, order, item))

    def pop(self, now: float) -> tuple[_Item, float] | None:
        """The partition whose turn it is at `now`, and since when it may call; None if none
        may call yet."""
        self._admit(now)
        if not self._ready:
            return None
        _, ready_at, _, item = heapq.heappop(self._ready)
        return item, ready_at

    def ready(self, now: float) -> int:
        """How many partitions may call at `now`."""
        self._admit(now)
        return len(self._ready)

    def next_ready_at(self) -> float | None:
        """When the next partition may call (None: the line is empty)."""
        first = [self._waiting[0][0]] if self._waiting else []
        if self._ready:
            first.append(min(ready_at for _, ready_at, _, _ in self._ready))
        return min(first) if first else None

    def longest_wait(self, now: float) -> float:
        """How long, at `now`, the partition allowed to call the longest ago has waited for a
        turn (0 when none may call)."""
        self._admit(now)
        if not self._ready:
            return 0.0
        return max(0.0, now - min(ready_at for _, ready_at, _, _ in self._ready))

    def drain(self) -> list[_Item]:
        """Every item still in line, emptying it."""
        items = [entry[3] for entry in self._waiting] + [entry[3] for entry in self._ready]
        self._waiting.clear()
        self._ready.clear()
        return items

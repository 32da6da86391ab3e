"""The sessions stream's bookmarks during one run: each partition's, the account's frontier
(how far the API has published, as this run knows it) and the partitions held back because the
API cut one of their windows short. No I/O: the stream writes what this decides."""

from __future__ import annotations

import time
import typing as t
from datetime import datetime, timedelta

from tap_kore_billing.state.bookmarks import PartitionBookmark

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tap_kore_billing.core.partitions import Partition


class RunBookmarks:
    """Where every partition stands as the run's windows finish, in any order."""

    def __init__(
        self,
        bookmarks: dict[Partition, PartitionBookmark],
        *,
        run_started_at: datetime,
        lookback: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bookmarks = dict(bookmarks)
        self.held_back: set[Partition] = set()
        self._run_started_at = run_started_at
        self._lookback_seconds = lookback.total_seconds()
        self._clock = clock
        self._started = clock()
        # The newest session the API has shown for any partition: how far it has published.
        shown = [b.newest_shown for b in bookmarks.values() if b.newest_shown]
        self.frontier = min(max(shown), run_started_at) if shown else None

    def _run_is_short(self) -> bool:
        # What other partitions showed during this run stands for what the API had published
        # only while the run is short next to the lookback.
        return self._clock() - self._started <= self._lookback_seconds

    def hold_back(self, partition: Partition) -> bool:
        """Keep the partition's bookmark before a window the API cut short (the next run
        reads it again instead of leaving a gap); True the first time."""
        if partition in self.held_back:
            return False
        self.held_back.add(partition)
        return True

    def window_done(
        self,
        partition: Partition,
        *,
        newest_end: datetime | None,
        longest: timedelta,
        read_through: datetime,
    ) -> PartitionBookmark | None:
        """The partition's new bookmark after a complete window (all its rows written), or
        None if the partition is held back."""
        if partition in self.held_back:
            return None
        if (
            newest_end is not None
            and (self.frontier is None or newest_end > self.frontier)
            and self._run_is_short()
        ):
            self.frontier = newest_end
        bookmark = self.bookmarks[partition].advanced(
            newest_end=newest_end,
            longest=longest,
            read_through=read_through,
            run_started_at=self._run_started_at,
            frontier=self.frontier,
        )
        self.bookmarks[partition] = bookmark
        return bookmark

    def last_word(
        self, read_through: Iterable[tuple[Partition, datetime]]
    ) -> list[tuple[Partition, PartitionBookmark]]:
        """Bookmarks that move once every window is done: partitions that finished early were
        checked against the frontier known then; the API's frontier is what this run saw
        last (a run is short next to publication lags)."""
        moved = []
        for partition, end in read_through:
            if partition in self.held_back or self.frontier is None:
                continue
            if not self._run_is_short():
                break
            final = self.bookmarks[partition].advanced(
                newest_end=None,
                longest=timedelta(0),
                read_through=end,
                run_started_at=self._run_started_at,
                frontier=self.frontier,
            )
            if final != self.bookmarks[partition]:
                self.bookmarks[partition] = final
                moved.append((partition, final))
        return moved


def retire_inherited(state: dict[str, t.Any]) -> bool:
    """Drop, in place, the stream-level bookmark and app-level ones superseded by per-channel
    ones; whether anything was dropped.

    They were starting points for partitions that had no state of their own; once those have
    theirs, keeping them would start an app (or channel) added later at someone else's
    bookmark instead of start_date.
    """
    entries = state.get("partitions") or []
    changed = False
    if entries and "replication_key_value" in state:
        for key in ("replication_key", "replication_key_value"):
            state.pop(key, None)
        changed = True
    with_channels = {e["context"].get("botId") for e in entries if "channel" in e["context"]}
    kept = [
        e
        for e in entries
        if set(e["context"]) != {"botId"} or e["context"]["botId"] not in with_channels
    ]
    if len(kept) != len(entries):
        state["partitions"] = kept
        changed = True
    return changed

"""A partition's bookmark: what the API has shown, not what the clock says.

Billing sessions are published late (hours or days after they end, some later than others),
so a run cannot assume that everything up to its own start is final. A partition keeps:

- `newest_shown`: the end of the newest session the API has shown for it. Sessions published
  late end near the sessions the API already shows, so each run re-reads `lookback_hours`
  before this point, whatever the publication delay.
- `checked_through`: how far the partition has been read completely AND the API had published
  (the newest session it showed for any partition of the stream, the account's frontier). A
  run re-reads the lookback before this point too. A quiet app among busy ones is so read from
  near the account's frontier, without re-reading its months of silence; while publication
  lags or stalls, the frontier stays behind and nothing in between is skipped.
- `longest_session`: the longest session seen (start to end). When the API selects sessions
  by their start, a session ending inside the lookback started up to this much earlier.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tap_kore_billing.core.datetimes import parse_setting_datetime, to_iso

MIN_SESSION_MARGIN = timedelta(hours=1)
CHECKED_THROUGH = "checked_through"
LONGEST_SESSION = "longest_session_seconds"
NO_SESSION_YET = "no_session_yet"  # the value stands for checked_through, not a session


@dataclass(frozen=True)
class PartitionBookmark:
    """Where one partition stands; immutable, advanced window by window."""

    newest_shown: datetime | None = None
    checked_through: datetime | None = None
    longest_session: timedelta = timedelta(0)

    @classmethod
    def from_state(cls, state: t.Mapping[str, t.Any], replication_key: str) -> PartitionBookmark:
        """Read a partition's (or a stream's) state entry.

        An entry without `checked_through` was written before bookmarks followed the API (its
        value was the end of the last window read, clamped to that run's start): it is taken
        as `checked_through`, so an upgrade neither re-backfills nor leaves a gap.

        Raises:
            ValueError: a value is not an ISO 8601 date-time or a number of seconds.
        """
        if state.get("replication_key") != replication_key or not state.get(
            "replication_key_value"
        ):
            return cls()
        value = _parse("replication_key_value", state["replication_key_value"])
        if CHECKED_THROUGH not in state:
            return cls(checked_through=value)
        longest = state.get(LONGEST_SESSION) or 0
        if isinstance(longest, bool) or not isinstance(longest, (int, float)) or longest < 0:
            raise ValueError(f"{LONGEST_SESSION} {longest!r} is not a number of seconds")
        return cls(
            newest_shown=None if state.get(NO_SESSION_YET) else value,
            checked_through=_parse(CHECKED_THROUGH, state[CHECKED_THROUGH]),
            longest_session=timedelta(seconds=longest),
        )

    def to_state(self, replication_key: str) -> dict[str, t.Any]:
        """The entry to store; without sessions yet, `checked_through` stands in for the value."""
        value = self.newest_shown or self.checked_through
        entry: dict[str, t.Any] = {
            "replication_key": replication_key,
            "replication_key_value": to_iso(value) if value else None,
        }
        if self.newest_shown is None:
            entry[NO_SESSION_YET] = True
        if self.checked_through is not None:
            entry[CHECKED_THROUGH] = to_iso(self.checked_through)
        entry[LONGEST_SESSION] = int(self.longest_session.total_seconds())
        return entry

    def write_into(self, entry: dict[str, t.Any], replication_key: str) -> None:
        """Store this bookmark in a partition's state entry, in place: every key an earlier
        bookmark wrote is replaced or removed (a stale `no_session_yet` would hide the newest
        session from the next run); other keys, such as `context`, stay."""
        for key in (NO_SESSION_YET, CHECKED_THROUGH, LONGEST_SESSION):
            entry.pop(key, None)
        entry.update(self.to_state(replication_key))

    @property
    def margin(self) -> timedelta:
        return max(MIN_SESSION_MARGIN, self.longest_session)

    def fetch_ranges(
        self, *, start_date: datetime, fetch_to: datetime, lookback: timedelta
    ) -> list[tuple[datetime, datetime]]:
        """The ranges a run reads, oldest first, never overlapping.

        Around the newest session shown (late publications land there), and from the point
        read completely up to `fetch_to`. When both touch, they are one range.
        """
        floor = start_date - lookback
        reach = lookback + self.margin
        ranges: list[tuple[datetime, datetime]] = []
        if self.newest_shown is not None:
            ranges.append((self.newest_shown - reach, self.newest_shown + reach))
        recent_from = self.checked_through - reach if self.checked_through else floor
        ranges.append((recent_from, fetch_to))
        merged: list[tuple[datetime, datetime]] = []
        for low, high in sorted((max(low, floor), min(high, fetch_to)) for low, high in ranges):
            if low >= high:
                continue
            if merged and low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
            else:
                merged.append((low, high))
        return merged

    def advanced(
        self,
        *,
        newest_end: datetime | None,
        longest: timedelta,
        read_through: datetime,
        run_started_at: datetime,
        frontier: datetime | None,
    ) -> PartitionBookmark:
        """After a complete window: never backwards, never past the run's start.

        `frontier` is the newest session the API has shown for any partition of the stream;
        a window is only checked as far as the API had published. While nothing has been
        shown anywhere, nothing counts as checked: an API that publishes days late shows
        nothing at first, and the next run must read from start_date again.
        """
        newest = self.newest_shown
        if newest_end is not None:
            newest = min(max(newest or newest_end, newest_end), run_started_at)
        published = [d for d in (frontier, newest) if d is not None]
        checked = self.checked_through
        if published:
            reached = min(read_through, run_started_at, max(published))
            checked = max(checked, reached) if checked is not None else reached
        return replace(
            self,
            newest_shown=newest,
            checked_through=checked,
            longest_session=max(self.longest_session, longest),
        )

    def describe(self) -> str:
        if self.newest_shown is None and self.checked_through is None:
            return "none"
        newest = to_iso(self.newest_shown) if self.newest_shown else "none"
        checked = to_iso(self.checked_through) if self.checked_through else "none"
        return f"newest session shown {newest}, read through {checked}"


def _parse(name: str, value: object) -> datetime:
    try:
        return parse_setting_datetime(str(value))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 date-time") from None


def period_bookmark(state: t.Mapping[str, t.Any], replication_key: str) -> datetime | None:
    """The usage summary's bookmark in a partition's state entry: the start of the newest
    ended period written (None: no bookmark yet).

    Raises:
        ValueError: the value is not an ISO 8601 date-time.
    """
    value = state.get("replication_key_value")
    if state.get("replication_key") != replication_key or not value:
        return None
    return _parse("replication_key_value", value)


def advance_period_bookmark(
    entry: dict[str, t.Any], replication_key: str, newest: datetime
) -> bool:
    """Move the entry's bookmark to `newest`, never backwards; whether it moved."""
    new_value = to_iso(newest)
    current = entry.get("replication_key_value")
    if entry.get("replication_key") == replication_key and current and current >= new_value:
        return False
    entry["replication_key"] = replication_key
    entry["replication_key_value"] = new_value
    return True

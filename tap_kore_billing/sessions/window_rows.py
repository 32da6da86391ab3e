"""One date window's rows: which to write, and what the window's bookmark needs from them.

Pages of a window may repeat rows (the API does not document a stable order) and neighbouring
windows share their edge, so rows are de-duplicated by billingSessionId within the window and
against the previous window's rows near its end. This runs once per session: it is written as
one tight loop over a page.
"""

from __future__ import annotations

import typing as t
from datetime import datetime, timedelta

from tap_kore_billing.core.datetimes import to_iso

ENDS = "billingSessionEndDateTime"  # the replication key
BEGINS = "billingSessionStartDateTime"
# Rows this close to a window's end are remembered for de-duplicating the next window: wide
# enough for an API that compares fromDate/toDate by the day rather than the instant.
EDGE_MARGIN = timedelta(days=1)

Key = bytes | str


def compact_id(session_id: str) -> Key:
    """A lowercase hex ID as bytes (half the memory in the de-duplication sets); any other ID
    as it is, so two different IDs never share a key."""
    try:
        key = bytes.fromhex(session_id)
    except ValueError:
        return session_id
    # fromhex also reads upper case and spaces: only the one spelling hex() gives back is
    # compacted, so "AB" and "ab" stay two keys.
    return key if key.hex() == session_id else session_id


class WindowRows:
    """The rows of one window seen so far, page after page."""

    def __init__(
        self, window_end: datetime, previous_edge: set[Key], start_iso: str, end_iso: str | None
    ) -> None:
        """
        Args:
            window_end: Where the window ends; rows near it are kept for the next window.
            previous_edge: The previous window's rows near its end (`near_edge` of its tally).
            start_iso: `start_date` as ISO 8601 UTC: sessions ending earlier are not written.
            end_iso: `end_date` likewise, or None.
        """
        self.ids: set[Key] = set()
        self.near_edge: set[Key] = set()
        self.previous_edge = previous_edge
        self.edge_floor = to_iso(window_end - EDGE_MARGIN)
        self.start_iso = start_iso
        self.end_iso = end_iso
        self.duplicates = 0
        self.outside = 0  # ending outside start_date..end_date
        self.newest_end = ""  # ISO 8601 UTC, compared as text
        self.longest = timedelta(0)

    @property
    def written(self) -> int:
        return len(self.ids) - self.outside

    def keep(self, records: list[dict[str, t.Any]]) -> tuple[list[dict[str, t.Any]], int]:
        """The records of a page to write, in order; and how many of the page repeated rows
        this window had already sent (all of them: paging is not advancing)."""
        ids, near_edge, previous = self.ids, self.near_edge, self.previous_edge
        edge_floor, start_iso, end_iso = self.edge_floor, self.start_iso, self.end_iso
        newest, longest = self.newest_end, self.longest
        fromiso = datetime.fromisoformat
        kept: list[dict[str, t.Any]] = []
        repeated = duplicates = outside = 0
        for record in records:
            key = compact_id(record["billingSessionId"])
            if key in ids:
                repeated += 1
                continue
            if key in previous:
                duplicates += 1
                continue
            ids.add(key)
            ends = record[ENDS]
            begins = record[BEGINS]
            if (ends or "") >= edge_floor or (begins or "") >= edge_floor:
                near_edge.add(key)
            if ends is None:
                kept.append(record)  # no end to filter by: the session is written
                continue
            if ends < start_iso or (end_iso is not None and ends > end_iso):
                outside += 1
                continue
            kept.append(record)
            newest = max(newest, ends)
            if begins:
                span = fromiso(ends) - fromiso(begins)
                longest = max(longest, span)
        self.newest_end, self.longest = newest, longest
        self.duplicates += duplicates + repeated
        self.outside += outside
        return kept, repeated

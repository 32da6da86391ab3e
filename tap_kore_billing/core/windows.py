"""Date windows for the API's fromDate/toDate: contiguous, bounded, never over three months."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_MONTHS = 3  # the API rejects longer fromDate/toDate ranges


@dataclass(frozen=True)
class Window:
    """One fromDate/toDate range. Both ends are sent; the API may treat both as inclusive."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{_short(self.start)}..{_short(self.end)}"


def _short(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def add_months(value: datetime, months: int) -> datetime:
    """Calendar month arithmetic that clamps the day: Nov 30 + 3 months is Feb 28 (or 29)."""
    month_index = value.month - 1 + months
    year = value.year + month_index // 12
    month = month_index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def plan_windows(start: datetime, end: datetime, window_days: int) -> list[Window]:
    """Split [start, end] into contiguous windows of at most `window_days` and three months.

    Each window's end is the next window's start, so no instant falls between two windows.
    """
    windows: list[Window] = []
    size = timedelta(days=window_days)
    cursor = start
    while cursor < end:
        upper = min(cursor + size, add_months(cursor, MAX_MONTHS), end)
        windows.append(Window(cursor, upper))
        cursor = upper
    return windows

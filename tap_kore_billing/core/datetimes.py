"""The API's zone-less datetime strings, and ISO 8601 for the fromDate/toDate it expects.

The documented form is ``03-10-2021 2:05:03 pm``: month-day-year, 12-hour clock, unpadded hour,
lowercase am/pm, no zone. The parser takes that fast path first and falls back to a few close
variants (upper-case AM/PM, fractional seconds, a 24-hour clock, ISO 8601) because the format is
shown by one example, not specified.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

UTC = timezone.utc

_API_FORMAT = re.compile(
    r"(\d{1,2})[-/](\d{1,2})[-/](\d{4}),?[ T]\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"\s*([AaPp])?\.?\s*(?:([Mm])\.?)?(?:\s*(UTC|GMT|Z))?"
)
# Epoch seconds or milliseconds, should a deployment send numbers instead of strings.
_EPOCH = re.compile(r"\d{9,13}")
_EPOCH_MS_FLOOR = 100_000_000_000  # larger values are milliseconds


class UnparseableDatetimeError(ValueError):
    """A datetime string the tap cannot interpret."""


@lru_cache(maxsize=64)
def _offset_cache(zone: tzinfo, year: int, month: int, day: int, hour: int) -> timedelta:
    # Zone offsets change at most on hour boundaries in practice; caching by hour makes the
    # per-record conversion cheap without assuming a fixed offset across DST changes.
    local = datetime(year, month, day, hour, tzinfo=zone)
    offset = local.utcoffset()
    return offset if offset is not None else timedelta(0)


def parse_api_datetime(value: str, zone: tzinfo = UTC) -> datetime:
    """Parse one of the API's datetime strings into an aware UTC datetime.

    Args:
        value: The raw string, e.g. ``03-10-2021 2:05:03 pm``.
        zone: The zone the API's zone-less strings are in.

    Returns:
        The instant, in UTC.

    Raises:
        UnparseableDatetimeError: The string is not a datetime in a form the API is known to use.
    """
    text = " ".join(value.split())
    if _EPOCH.fullmatch(text):
        number = int(text)
        seconds = number / 1000 if number >= _EPOCH_MS_FLOOR else number
        return datetime.fromtimestamp(seconds, tz=UTC)
    match = _API_FORMAT.fullmatch(text)
    if match is None or (match.group(8) is None) != (match.group(9) is None):
        return _parse_iso(text, zone)
    month, day, year, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    micro = int((match.group(7) or "0").ljust(6, "0"))
    meridiem = match.group(8) and match.group(8).lower() + "m"
    if meridiem is not None:
        if not 1 <= hour <= 12:
            raise UnparseableDatetimeError(value)
        hour %= 12
        if meridiem == "pm":
            hour += 12
    try:
        naive = datetime(year, month, day, hour, minute, second, micro)
    except ValueError as exc:
        raise UnparseableDatetimeError(value) from exc
    if zone is UTC or match.group(10):  # an explicit UTC suffix beats api_timezone
        return naive.replace(tzinfo=UTC)
    offset = _offset_cache(zone, year, month, day, hour)
    return (naive - offset).replace(tzinfo=UTC)


# Validated pieces of the documented form, by their text: dates of the data's span and the
# 1,440 minutes of a day. A run reads few distinct dates; the cap keeps odd data from growing it.
_DATES: dict[str, str] = {}
_MINUTES: dict[str, dict[str, str]] = {"am": {}, "pm": {}}
_DATES_CAP = 100_000
_SECONDS = frozenset(f"{second:02d}" for second in range(60))


def _iso_date(text: str) -> str:
    """`03-10-2021` -> `2021-03-10`, or "" when it is not a month-day-year date."""
    try:
        month, day, year = text.split("-")
        # The forms the general parser takes: 1-2 digit month and day, a 4-digit year (a
        # 2-digit one would silently become year 26); int() alone takes "+5", "1_0" and "007".
        if len(year) != 4 or len(month) > 2 or len(day) > 2 or not (month + day + year).isdigit():
            return ""
        iso = date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return ""
    if len(_DATES) >= _DATES_CAP:
        _DATES.clear()
    _DATES[text] = iso
    return iso


def _iso_minute(text: str, meridiem: str) -> str:
    """`2:05` and `am`/`pm` -> `14:05`, or "" when it is not a 12-hour clock reading."""
    try:
        hours, minutes = text.split(":")
        if (
            not (hours + minutes).isdigit()
            or len(hours) > 2
            or len(minutes) != 2
            or not 1 <= int(hours) <= 12
        ):
            return ""
        hour = int(hours)
        iso = time(hour % 12 + (12 if meridiem == "pm" else 0), int(minutes)).isoformat(
            timespec="minutes"
        )
    except ValueError:
        return ""
    _MINUTES[meridiem][text] = iso
    return iso


def api_datetime_to_iso(value: str, zone: tzinfo = UTC) -> str:
    """`parse_api_datetime` then `to_iso`, with a fast path for the documented form in UTC.

    A sync converts four datetimes per session; the documented form repeats few distinct dates
    and clock minutes, so their validated ISO forms are looked up and joined with the seconds.
    """
    if zone is UTC:
        parts = value.split(" ")
        if len(parts) == 3:
            day, clock, meridiem = parts
            minutes = _MINUTES.get(meridiem)
            minute, _, second = clock.rpartition(":")
            if minutes is not None and second in _SECONDS:
                date_part = _DATES.get(day) or _iso_date(day)
                time_part = minutes.get(minute) or _iso_minute(minute, meridiem)
                if date_part and time_part:
                    return f"{date_part}T{time_part}:{second}+00:00"
    # Not the documented form (or not UTC): the general parser decides.
    return to_iso(parse_api_datetime(value, zone))


def _parse_iso(text: str, zone: tzinfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UnparseableDatetimeError(text) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def to_iso(value: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, the form records and bookmarks use."""
    return value.astimezone(UTC).isoformat()


def to_api_timestamp(value: datetime) -> str:
    """The full-timestamp form of fromDate/toDate: ``2021-03-10T14:05:03.000Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_setting_datetime(value: str) -> datetime:
    """Parse a `start_date`/`end_date` setting; a value without a zone is taken as UTC.

    Raises:
        ValueError: The value is not an ISO 8601 date or date-time.
    """
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

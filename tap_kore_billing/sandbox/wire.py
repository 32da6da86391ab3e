"""What every endpoint of the emulator shares: the reply it sends, the API's error shape and its
date rules.

A module of its own so that the endpoints, the gate and the HTTP server all use them without
importing each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DATE_ONLY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})"
)


class ApiError(Exception):
    """An error response in the API's `{"errors": [...]}` shape."""

    def __init__(
        self, status: int, msg: str, code: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.code = status if code is None else code
        self.headers = headers or {}
        self.wait_seconds = 0


def errors_body(msg: str, code: int) -> bytes:
    return json.dumps({"errors": [{"msg": msg, "code": code}]}).encode()


@dataclass
class Reply:
    """A response to send, or `drop` to close the connection without one."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    drop: bool = False


def error_reply(error: ApiError) -> Reply:
    return Reply(error.status, errors_body(error.msg, error.code), dict(error.headers))


def parse_date_text(text: str) -> datetime | None:
    if _DATE_ONLY.fullmatch(text):
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    # Built from the groups: Python 3.10's fromisoformat takes only 3 or 6 fraction digits.
    micro = int((match.group(7) or "0").ljust(6, "0"))
    parsed = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    zone = match.group(8)
    if zone == "Z":
        return parsed
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return parsed - sign * offset


def parse_api_date(name: str, value: object) -> datetime:
    """Parse a fromDate/toDate; a date-only value is 00:00:00.000 UTC of that day."""
    if not isinstance(value, str):
        raise ApiError(400, f"{name} is required and must be a string (yyyy-mm-dd)")
    try:
        parsed = parse_date_text(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApiError(
            400, f"Invalid {name} '{value}': expected yyyy-mm-dd or yyyy-mm-ddThh:mm:ss.sssZ"
        )
    return parsed


def epoch_bounds(from_dt: datetime, to_dt: datetime) -> tuple[int, int]:
    # Rows sit on whole seconds and both bounds are inclusive; integer microseconds keep the
    # rounding exact where float timestamps would not be.
    micro = timedelta(microseconds=1)
    low, high = (from_dt - EPOCH) // micro, (to_dt - EPOCH) // micro
    return -(-low // 1_000_000), high // 1_000_000

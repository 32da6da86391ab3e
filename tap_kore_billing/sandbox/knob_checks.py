"""How a knob's value is read and checked: each function takes a Python value (from `Sandbox(...)`
or `POST /__sandbox/configure`) or command-line text, and returns the value as the emulator
uses it, or raises ValueError/TypeError saying what is wrong (`knobs.checked` adds the knob's
name). Apart from the knob table so that the table reads as one list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from tap_kore_billing.sandbox.summary_report import COUNTER_NAMES
from tap_kore_billing.sandbox.wire import UTC, parse_date_text


def count(value: object) -> int:
    if isinstance(value, bool) or int(value) < 0:  # type: ignore[call-overload]
        raise ValueError("must be >= 0")
    return int(value)  # type: ignore[call-overload]


def positive_int(value: object) -> int:
    if isinstance(value, bool) or int(value) < 1:  # type: ignore[call-overload]
        raise ValueError("must be >= 1")
    return int(value)  # type: ignore[call-overload]


def optional_limit(value: object) -> int | None:
    return None if value is None else positive_int(value)


def rate(value: object) -> float:
    fraction = float(value)  # type: ignore[arg-type]
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("rates must be within [0, 1]")
    return fraction


def non_negative_float(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if number < 0:
        raise ValueError("must be >= 0")
    return number


def non_empty_str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def one_of(*allowed: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return str(value)

    return check


def channels(value: object) -> tuple[str, ...]:
    """A tuple of channel names, from a sequence or comma-separated text."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise TypeError("expected channel names")
    names = tuple(str(c).strip() for c in items if str(c).strip())
    if not names:
        raise ValueError("needs at least one channel")
    return names


def optional_datetime(value: object) -> datetime | None:
    """An aware datetime, from one or from ISO 8601 text (zone-less text is UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("must be an aware datetime")
    return value


def optional_epoch(value: object) -> float | None:
    """Epoch seconds, from a number or from API date text."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_date_text(value.strip())
        return parsed.timestamp() if parsed is not None else float(value)
    return float(value)  # type: ignore[arg-type]


def _items(value: object) -> list[object]:
    """Comma-separated text or a sequence, as a list of its non-empty items."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError("expected a list or comma-separated text")
    return list(value)


def app_numbers(value: object) -> frozenset[int]:
    """1-based app positions, from "1,3" or [1, 3]."""
    return frozenset(positive_int(item) for item in _items(value))


def _pair(item: object) -> tuple[int, int]:
    parts = item.split(":") if isinstance(item, str) else item
    if not isinstance(parts, Iterable):
        raise TypeError(f"expected PARENT:LINKED, not {item!r}")
    numbers = [positive_int(part) for part in parts]
    if len(numbers) != 2 or numbers[0] == numbers[1]:
        raise ValueError(f"expected PARENT:LINKED of two different apps, not {item!r}")
    return numbers[0], numbers[1]


def pairs(value: object) -> tuple[tuple[int, int], ...]:
    """(parent, linked) app positions, from "1:2,1:3" or [(1, 2), (1, 3)]; duplicates once."""
    if value is None:
        return ()
    return tuple(dict.fromkeys(_pair(item) for item in _items(value)))


def id_set(value: object) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError("expected a list of billingSessionIds")
    return frozenset(str(item) for item in value)


def _discrepancy(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected {botId, day, unit, delta}")
    unit = str(value.get("unit"))
    if unit not in COUNTER_NAMES:
        raise ValueError(f"unit must be one of {sorted(COUNTER_NAMES)}")
    day = date.fromisoformat(str(value.get("day")))
    delta = value.get("delta")
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError("delta must be an integer")
    return {"botId": str(value.get("botId")), "day": day, "unit": unit, "delta": delta}


def discrepancies(value: object) -> tuple[dict[str, Any], ...]:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise TypeError("expected a list of {botId, day, unit, delta}")
    return tuple(_discrepancy(item) for item in value)

"""Kore.ai's billing rule as the emulator applies it (see ../shared/kore-api/billing-rules.md).

A billing session is at most 15 minutes of one user's activity with an app. A conversation
session of L seconds is billed as ceil(L / 900) sessions of its user: 15-minute windows back to
back from the conversation's start, the last one ending with the conversation. Notifications and
`Sessions` rows are single billing sessions of at most 15 minutes. A user's sessions with one
app on one channel never overlap: `Occupancy` keeps the times already taken.
"""

from __future__ import annotations

import random

WINDOW = 15 * 60  # seconds one billing session covers at most
MIN_DURATION = 10
MAX_DURATION = 40 * 60  # the longest generated conversation: three billing sessions
# Conversations exactly on a window's edge (15:00 is one session, 15:01 two), so a check of the
# rule meets its edges in realistic data.
EDGE_FRACTION = 0.05
EDGE_LENGTHS = (WINDOW, WINDOW + 1, 2 * WINDOW, 2 * WINDOW + 1)


def billed(length: int) -> int:
    """Billing sessions a conversation of `length` seconds holds: max(1, ceil(length / 900))."""
    return max(1, -(-length // WINDOW))


def windows(begin: int, length: int) -> list[tuple[int, int]]:
    """The billing sessions (start, end) of a conversation of `length` seconds from `begin`:
    back to back, each at most 15 minutes, the first starting and the last ending with it."""
    finish = begin + length
    return [(start, min(start + WINDOW, finish)) for start in range(begin, finish, WINDOW)]


def conversation_length(rng: random.Random, most: int) -> int:
    """A conversation's length in seconds, billed as at most `most` (>= 1) sessions: uniform
    over 10 s .. 40 min, now and then exactly on a window's edge."""
    longest = min(MAX_DURATION, most * WINDOW)
    if rng.random() < EDGE_FRACTION:
        return rng.choice([length for length in EDGE_LENGTHS if length <= longest])
    return rng.randint(MIN_DURATION, longest)


def single_length(rng: random.Random) -> int:
    """A notification's or a `Sessions` row's length: one billing session, 10 s .. 15 min."""
    return rng.randint(MIN_DURATION, WINDOW)


def _mean_billed() -> float:
    uniform = range(MIN_DURATION, MAX_DURATION + 1)
    spread = sum(billed(length) for length in uniform) / len(uniform)
    edges = sum(billed(length) for length in EDGE_LENGTHS) / len(EDGE_LENGTHS)
    return (1 - EDGE_FRACTION) * spread + EDGE_FRACTION * edges


MEAN_BILLED = _mean_billed()  # rows an unconstrained conversation yields, on average


def type_odds(notification_rows: float, plain_rows: float) -> tuple[float, float]:
    """The chances that a generated activity is a notification, or a `Sessions` row, so that
    those are the given fractions of the rows (a conversation yields MEAN_BILLED rows)."""
    conversation_rows = max(0.0, 1.0 - notification_rows - plain_rows)
    activities = notification_rows + plain_rows + conversation_rows / MEAN_BILLED
    if activities <= 0:
        return 0.0, 0.0
    return notification_rows / activities, plain_rows / activities


class Occupancy:
    """The times each (koreUserId, botId, channel) is already billed for."""

    def __init__(self) -> None:
        self._spans: dict[tuple[str, str, str], list[tuple[int, int]]] = {}

    def free(self, key: tuple[str, str, str], start: int, end: int) -> bool:
        """Whether [start, end] touches at most the ends of the times taken (touching is no
        overlap)."""
        return all(
            end <= taken_start or taken_end <= start
            for taken_start, taken_end in self._spans.get(key, ())
        )

    def take(self, key: tuple[str, str, str], start: int, end: int) -> None:
        """Record [start, end] as taken."""
        self._spans.setdefault(key, []).append((start, end))

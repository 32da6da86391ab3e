"""Which billing sessions the sandbox holds: seeded, deterministic, billed by the rule in
`billing.py` (a conversation of L minutes is ceil(L / 15) sessions of its user, back to back).

Counts are of rows (billing sessions): a run of `count` rows is a sequence of activities, each a
conversation of one to three rows or a single notification or `Sessions` row; the last
conversation of a run is kept short enough that the count is exact.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tap_kore_billing.sandbox.billing import (
    MAX_DURATION,
    WINDOW,
    Occupancy,
    billed,
    conversation_length,
    single_length,
)
from tap_kore_billing.sandbox.data import (
    CONVERSATIONS,
    DAY,
    UTC,
    Dataset,
    Generator,
    Session,
)
from tap_kore_billing.sandbox.planted import AuditCase, plant

LIVE_DAYS = 120  # live mode: `sessions` is a rate per this many days, and the default range
NEW_WITHIN = 50 * 60  # new sessions start in the 50 minutes after `end`


def _ceil_epoch(value: datetime) -> int:
    stamp = value.timestamp()
    whole = int(stamp)
    return whole + 1 if stamp > whole else whole


@dataclass(frozen=True)
class _Span:
    """Where one run of base activities begins: [lo, hi), the midnights boundary ones sit on,
    the instant after which an idle app's activity goes to a busy app, and the users drawn."""

    lo: int
    hi: int
    midnights: Sequence[int]
    idle_after: int
    pool: range


@dataclass(frozen=True)
class _Shape:
    """The knobs every run of base sessions shares."""

    filter_field: str
    boundary_fraction: float
    busy: int  # apps with sessions all through the range; the rest are idle


def _length(gen: Generator, rng: random.Random, most: int) -> tuple[str, int]:
    """An activity's type and length, billed as at most `most` rows."""
    session_type = gen.draw_type(rng)
    if session_type == CONVERSATIONS:
        return session_type, conversation_length(rng, most)
    return session_type, single_length(rng)


def _rows(session_type: str, length: int) -> int:
    return billed(length) if session_type == CONVERSATIONS else 1


def _base_sessions(
    gen: Generator,
    rng: random.Random,
    span: _Span,
    occupancy: Occupancy,
    *,
    first: int,
    count: int,
    shape: _Shape,
) -> list[list[Session]]:
    """Activities holding rows `first` .. `first + count - 1`, each row starting in the span;
    an activity's first row number picks its app and channel in turn."""
    apps = len(gen.bot_ids)
    room = 1 + (span.hi - span.lo - 1) // WINDOW  # rows of one conversation the span can start
    out: list[list[Session]] = []
    made = 0
    while made < count:
        session_type, length = _length(gen, rng, min(count - made, room))
        last_start = (_rows(session_type, length) - 1) * WINDOW  # of its last row, from begin
        begin = None
        if span.midnights and rng.random() < shape.boundary_fraction:
            midnight = rng.choice(span.midnights)
            begin = midnight if shape.filter_field == "start" else midnight - length
        if begin is None or begin + last_start >= span.hi:
            begin = rng.randrange(span.lo, span.hi - last_start)
        slot = first + made
        if slot % apps >= shape.busy and begin > span.idle_after:
            slot -= slot % apps - slot % shape.busy  # an idle app's late session goes to a busy one
        activity = gen.activity(
            rng, occupancy, span.pool, slot, session_type, begin, length, "base"
        )
        out.append(activity)
        made += len(activity)
    return out


def _fixed_sessions(  # noqa: PLR0917 - private, one call site
    gen: Generator, occupancy: Occupancy, sessions: int, start_ts: int, end_ts: int, shape: _Shape
) -> list[Session]:
    """Exactly `sessions` rows beginning in [start, end), all from the seed's one stream."""
    # Midnights (UTC) at which boundary sessions sit; for filter_field="end" the start must still
    # fall in [start, end), hence the margin of one maximal duration.
    first_ok = start_ts + (MAX_DURATION if shape.filter_field == "end" else 0)
    first_midnight = -(-first_ok // DAY) * DAY
    midnights = range(first_midnight, end_ts, DAY)
    idle_after = start_ts + (end_ts - start_ts) // 5
    span = _Span(start_ts, end_ts, midnights, idle_after, range(len(gen.users)))
    activities = _base_sessions(gen, gen.rng, span, occupancy, first=0, count=sessions, shape=shape)
    return [row for activity in activities for row in activity]


def _live_sessions(
    gen: Generator, sessions: int, start_ts: int, end_ts: int, shape: _Shape
) -> list[Session]:
    """Each UTC day's rows from that day's own stream, so a day is the same in every run.
    A row shows when it starts at or after `start` and its activity has ended by `end` (a
    conversation is published when it ends; one begun before `start` shows its later sessions,
    as a window from `start` would). Even and odd days draw from two halves of the users, so a
    day's users never depend on another day's (activities last under an hour)."""
    idle_after = start_ts + (end_ts - start_ts) // 5
    half = len(gen.users) // 2
    out: list[Session] = []
    for day in range(start_ts // DAY, end_ts // DAY + 1):
        # Cumulative floors: a day's count depends on its number alone, and the counts of
        # LIVE_DAYS consecutive days add up to `sessions`.
        first = sessions * day // LIVE_DAYS
        count = sessions * (day + 1) // LIVE_DAYS - first
        rng = random.Random(f"kore-sandbox:{gen.seed}:day:{day}")  # noqa: S311 - test data
        midnight = day * DAY
        pool = range(half) if day % 2 == 0 else range(half, len(gen.users))
        span = _Span(midnight, midnight + DAY, (midnight,), idle_after, pool)
        for activity in _base_sessions(
            gen, rng, span, Occupancy(), first=first, count=count, shape=shape
        ):
            if activity[-1].end <= end_ts:
                out.extend(row for row in activity if start_ts <= row.start)
    return out


def _held_back(  # noqa: PLR0917 - private, one call site
    gen: Generator,
    rng: random.Random,
    occupancy: Occupancy,
    first: int,
    late: int,
    new: int,
    end_ts: int,
) -> list[Session]:
    everyone = range(len(gen.users))
    hidden: list[Session] = []
    # Late arrivals: activities that ended in the 12 hours before `end`, inside windows a tap
    # has already read.
    made = 0
    while made < late:
        session_type, length = _length(gen, rng, late - made)
        finish = rng.randrange(end_ts - 12 * 3600 + length, end_ts)
        slot = first + made
        begin = finish - length
        rows = gen.activity(rng, occupancy, everyone, slot, session_type, begin, length, "late")
        hidden.extend(rows)
        made += len(rows)
    # New sessions start in [end, end + 50 min] and end before end + 1 h.
    made = 0
    while made < new:
        session_type, length = _length(gen, rng, new - made)
        last_start = (_rows(session_type, length) - 1) * WINDOW
        begin = end_ts + rng.randint(0, min(NEW_WITHIN - last_start, 3599 - length))
        slot = first + late + made
        rows = gen.activity(rng, occupancy, everyone, slot, session_type, begin, length, "new")
        hidden.extend(rows)
        made += len(rows)
    return hidden


def time_range(
    start: datetime | None, end: datetime | None, now: datetime | None
) -> tuple[datetime, datetime, bool]:
    """(start, end, live): without `end` the range ends an hour before `now` (default: the
    real time) and the data is generated day by day."""
    live = end is None
    if end is None:
        end = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(hours=1)
    return (start if start is not None else end - timedelta(days=LIVE_DAYS)), end, live


def generate(
    *,
    seed: int,
    apps: int,
    channels: Sequence[str],
    sessions: int,
    late: int,
    new: int,
    start: datetime | None,
    end: datetime | None,
    tz: str,
    filter_field: str,
    notification_fraction: float,
    extra_field_fraction: float,
    boundary_fraction: float,
    idle_apps: int = 0,
    plain_session_fraction: float = 0.0,
    hidden_apps: int = 0,
    audit_cases: Sequence[AuditCase] = (),
    now: datetime | None = None,
) -> Dataset:
    """Generate the sandbox's rows; the same arguments always give the same rows.

    With `end` given, exactly `sessions` rows begin in [start, end). Without it ("live"), each
    UTC day has its own rows, `sessions` per 120 days, the same whenever the emulator starts;
    those inside [start, end] show. The last `idle_apps` apps have sessions only in the first
    fifth of the range: apps that went quiet months ago, next to busy ones. The sessions of the
    last `hidden_apps` apps are held back with the late and new ones. `audit_cases` add rows
    that each break one billing rule (planted.py), listed in the dataset's `planted`.
    """
    if apps < 1 or not channels:
        raise ValueError("need at least one app and one channel")
    if not 0 <= idle_apps < apps:
        raise ValueError("idle_apps must leave at least one busy app")
    if not 0 <= hidden_apps < apps:
        raise ValueError("hidden_apps must leave at least one app visible from the start")
    if min(sessions, late, new) < 0:
        raise ValueError("session counts must be >= 0")
    first, last, live = time_range(start, end, now)
    start_ts, end_ts = _ceil_epoch(first), _ceil_epoch(last)
    if end_ts <= start_ts:
        raise ValueError("start must be before end")
    gen = Generator(
        seed=seed,
        apps=apps,
        channels=channels,
        tz=tz,
        notification_fraction=notification_fraction,
        plain_session_fraction=plain_session_fraction,
        extra_field_fraction=extra_field_fraction,
    )
    gen.make_users(min(max(10, sessions // 10), 20_000))
    shape = _Shape(filter_field, boundary_fraction, apps - idle_apps)
    taken = Occupancy()  # every user's times on each app and channel, for the held-back rows
    if live:
        visible = _live_sessions(gen, sessions, start_ts, end_ts, shape)
        held_rng = random.Random(f"kore-sandbox:{seed}:held")  # noqa: S311 - test data
        for row in visible:
            taken.take((str(row.raw["koreUserId"]), row.bot_id, row.channel), row.start, row.end)
    else:
        visible = _fixed_sessions(gen, taken, sessions, start_ts, end_ts, shape)
        held_rng = gen.rng
    hidden = _held_back(gen, held_rng, taken, sessions, late, new, end_ts)
    planted, cases = plant(gen, audit_cases, start_ts, end_ts)
    visible = visible + planted
    if hidden_apps:
        # Apps "added later": their rows show with the late and new ones, on reveal().
        later = set(gen.bot_ids[apps - hidden_apps :])
        hidden = [s for s in visible if s.bot_id in later] + hidden
        visible = [s for s in visible if s.bot_id not in later]

    present = {s.channel for s in visible} | {s.channel for s in hidden}
    return Dataset(
        bot_ids=gen.bot_ids,
        channels=[c for c in gen.channels if c in present],
        start=datetime.fromtimestamp(start_ts, UTC),
        end=datetime.fromtimestamp(end_ts, UTC),
        visible=visible,
        hidden=hidden,
        live=live,
        planted=cases,
    )

"""Seeded, deterministic billing-session data for the sandbox, rendered as the API renders it.

Every row is rendered to its JSON bytes once, at generation time, so serving a page is a slice
and a join. Times are whole epoch seconds internally; only the rendered strings carry a zone.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

try:  # orjson is optional; it only makes the one-off rendering faster.
    import orjson

    def dumps(value: object) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - depends on the environment
    _ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def dumps(value: object) -> bytes:
        """Compact JSON bytes."""
        return _ENCODER.encode(value).encode()


UTC = timezone.utc
DAY = 86400
FILTER_FIELDS = ("start", "end")
CONVERSATIONS = "Conversations"
PLAIN_SESSIONS = "Sessions"  # usage sessions: 15 minutes of interaction, no conversation fields
NOTIFICATION_TYPES = ("Alert Notifications", "Proactive Notifications")
MIN_DURATION = 10
MAX_DURATION = 40 * 60
LIVE_DAYS = 120  # live mode: `sessions` is a rate per this many days, and the default range

# Unknown keys a newer API version might add; a nested value and a null keep schemas honest.
_EXTRA_FIELDS: tuple[dict[str, object], ...] = (
    {"language": "en"},
    {"sessionTags": ["x"]},
    {"language": "de", "sessionTags": []},
    {"customData": {"source": "sandbox", "priority": 2}},
    {"language": None, "isDeveloper": False},
)


@dataclass(slots=True)
class Session:
    """One billing session; `raw` and `blob` are the row exactly as served."""

    id: str
    bot_id: str
    channel: str
    type: str
    start: int
    end: int
    order: int
    kind: str
    raw: dict[str, object]
    blob: bytes
    extra: bool = False

    def key(self, filter_field: str) -> int:
        """The epoch second that fromDate/toDate are compared with."""
        return self.start if filter_field == "start" else self.end


@dataclass(slots=True)
class Dataset:
    """Everything generated for one seed: app ids, visible rows and the rows held back."""

    bot_ids: list[str]
    channels: list[str]
    start: datetime
    end: datetime
    visible: list[Session] = field(default_factory=list)
    hidden: list[Session] = field(default_factory=list)
    live: bool = False  # generated day by day (no `end` given)


def _ceil_epoch(value: datetime) -> int:
    stamp = value.timestamp()
    whole = int(stamp)
    return whole + 1 if stamp > whole else whole


@lru_cache(maxsize=4096)
def _date_part(days: int) -> str:
    day = date(1970, 1, 1) + timedelta(days=days)
    return f"{day.month:02d}-{day.day:02d}-{day.year}"


class Renderer:
    """Formats epoch seconds like ``03-10-2021 2:05:03 pm`` in a given zone."""

    def __init__(self, tz: str) -> None:
        self.zone: tzinfo = UTC if tz.upper() in ("UTC", "Z", "ETC/UTC") else ZoneInfo(tz)
        self._offsets: dict[int, int] = {}

    def _offset(self, ts: int) -> int:
        # Offsets are cached per 15-minute bucket, but only when the bucket has one offset at
        # both ends, so a transition inside a bucket still renders exactly.
        bucket = ts // 900
        cached = self._offsets.get(bucket)
        if cached is not None:
            return cached
        first = self._utcoffset(bucket * 900)
        if first == self._utcoffset(bucket * 900 + 899):
            self._offsets[bucket] = first
            return first
        return self._utcoffset(ts)

    def _utcoffset(self, ts: int) -> int:
        offset = datetime.fromtimestamp(ts, self.zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def __call__(self, ts: int) -> str:
        local = ts if self.zone is UTC else ts + self._offset(ts)
        days, second_of_day = divmod(local, DAY)
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        meridiem = "am" if hour < 12 else "pm"
        return f"{_date_part(days)} {hour % 12 or 12}:{minute:02d}:{second:02d} {meridiem}"


def order_key(seed: int, billing_session_id: str) -> int:
    """A stable but non-chronological position for a row, the same for every query."""
    digest = hashlib.blake2b(f"{seed}:{billing_session_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def add_months(value: datetime, months: int) -> datetime:
    """Calendar month arithmetic that clamps the day (Nov 30 + 3 months = Feb 28/29)."""
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return value.replace(year=year, month=month, day=min(value.day, last_day))


class _Generator:
    def __init__(
        self,
        *,
        seed: int,
        apps: int,
        channels: Sequence[str],
        tz: str,
        notification_fraction: float,
        plain_session_fraction: float,
        extra_field_fraction: float,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.channels = list(channels)
        self.render = Renderer(tz)
        self.notification_fraction = notification_fraction
        self.plain_session_fraction = plain_session_fraction
        self.extra_field_fraction = extra_field_fraction
        self.bot_ids = [f"st-{self._uuid()}" for _ in range(apps)]
        self.users: list[tuple[str, dict[str, str]]] = []
        self.used_ids: set[str] = set()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def make_users(self, count: int) -> None:
        for _ in range(count):
            kore = f"u-{self._uuid()}"
            per_channel = {}
            for channel in self.channels:
                if channel.lower() == "ivr":
                    per_channel[channel] = f"+1555{self.rng.randrange(10**7):07d}"
                else:
                    per_channel[channel] = f"{self.rng.getrandbits(128):032x}"
            self.users.append((kore, per_channel))

    def _type(self, rng: random.Random) -> str:
        # One roll decides, so a fraction of 0 leaves every other draw where it was.
        roll = rng.random()
        if roll < self.notification_fraction:
            return rng.choice(NOTIFICATION_TYPES)
        if roll < self.notification_fraction + self.plain_session_fraction:
            return PLAIN_SESSIONS
        return CONVERSATIONS

    def session(self, rng: random.Random, index: int, start: int, end: int, kind: str) -> Session:
        bot_id = self.bot_ids[index % len(self.bot_ids)]
        channel = self.channels[(index // len(self.bot_ids)) % len(self.channels)]
        kore_user, channel_users = self.users[rng.randrange(len(self.users))]
        billing_id = _hex24(rng)
        while billing_id in self.used_ids:
            billing_id = _hex24(rng)
        self.used_ids.add(billing_id)
        session_type = self._type(rng)
        raw: dict[str, object] = {
            "botId": bot_id,
            "channel": channel,
            "koreUserId": kore_user,
            "channelUserId": channel_users[channel],
            "billingSessionType": session_type,
        }
        if session_type == CONVERSATIONS:
            conv_start, conv_end = start, end
            if rng.random() < 0.5:
                third = (end - start) // 3
                conv_start = start + rng.randint(0, third)
                conv_end = end - rng.randint(0, third)
            raw["conversationSessionId"] = _hex24(rng)
            raw["conversationSessionStartDateTime"] = self.render(conv_start)
            raw["conversationSessionEndDateTime"] = self.render(conv_end)
        raw["billingSessionId"] = billing_id
        raw["billingSessionStartDateTime"] = self.render(start)
        raw["billingSessionEndDateTime"] = self.render(end)
        extra = rng.random() < self.extra_field_fraction
        if extra:
            raw.update(rng.choice(_EXTRA_FIELDS))
        return Session(
            id=billing_id,
            bot_id=bot_id,
            channel=channel,
            type=session_type,
            start=start,
            end=end,
            order=order_key(self.seed, billing_id),
            kind=kind,
            raw=raw,
            blob=dumps(raw),
            extra=extra,
        )


def _hex24(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


@dataclass(frozen=True)
class _Span:
    """Where one run of base sessions begins: [lo, hi), plus the midnights boundary sessions
    sit on and the instant after which an idle app's session goes to a busy app."""

    lo: int
    hi: int
    midnights: Sequence[int]
    idle_after: int


@dataclass(frozen=True)
class _Shape:
    """The knobs every run of base sessions shares."""

    filter_field: str
    boundary_fraction: float
    busy: int  # apps with sessions all through the range; the rest are idle


def _base_sessions(
    gen: _Generator, rng: random.Random, span: _Span, *, first: int, count: int, shape: _Shape
) -> list[Session]:
    """Base sessions `first` .. `first + count - 1`: the index picks app and channel in turn."""
    apps = len(gen.bot_ids)
    out: list[Session] = []
    for index in range(first, first + count):
        duration = rng.randint(MIN_DURATION, MAX_DURATION)
        if span.midnights and rng.random() < shape.boundary_fraction:
            midnight = rng.choice(span.midnights)
            begin = midnight if shape.filter_field == "start" else midnight - duration
        else:
            begin = rng.randrange(span.lo, span.hi)
        slot = index
        if slot % apps >= shape.busy and begin > span.idle_after:
            slot -= slot % apps - slot % shape.busy  # an idle app's late session goes to a busy one
        out.append(gen.session(rng, slot, begin, begin + duration, "base"))
    return out


def _fixed_sessions(
    gen: _Generator, sessions: int, start_ts: int, end_ts: int, shape: _Shape
) -> list[Session]:
    """Exactly `sessions` rows beginning in [start, end), all from the seed's one stream."""
    # Midnights (UTC) at which boundary sessions sit; for filter_field="end" the start must still
    # fall in [start, end), hence the margin of one maximal duration.
    first_ok = start_ts + (MAX_DURATION if shape.filter_field == "end" else 0)
    first_midnight = -(-first_ok // DAY) * DAY
    midnights = range(first_midnight, end_ts, DAY)
    span = _Span(start_ts, end_ts, midnights, start_ts + (end_ts - start_ts) // 5)
    return _base_sessions(gen, gen.rng, span, first=0, count=sessions, shape=shape)


def _live_sessions(
    gen: _Generator, sessions: int, start_ts: int, end_ts: int, shape: _Shape
) -> list[Session]:
    """Each UTC day's rows from that day's own stream, so a day is the same in every run; only
    the rows inside [start, end] show."""
    idle_after = start_ts + (end_ts - start_ts) // 5
    out: list[Session] = []
    for day in range(start_ts // DAY, end_ts // DAY + 1):
        # Cumulative floors: a day's count depends on its number alone, and the counts of
        # LIVE_DAYS consecutive days add up to `sessions`.
        first = sessions * day // LIVE_DAYS
        count = sessions * (day + 1) // LIVE_DAYS - first
        rng = random.Random(f"kore-sandbox:{gen.seed}:day:{day}")  # noqa: S311 - test data
        midnight = day * DAY
        span = _Span(midnight, midnight + DAY, (midnight,), idle_after)
        rows = _base_sessions(gen, rng, span, first=first, count=count, shape=shape)
        out.extend(s for s in rows if start_ts <= s.start and s.end <= end_ts)
    return out


def _held_back(
    gen: _Generator, rng: random.Random, *, first: int, late: int, new: int, end_ts: int
) -> list[Session]:
    hidden: list[Session] = []
    # Late arrivals ended in the 12 hours before `end`: inside windows a tap has already read.
    for i in range(late):
        duration = rng.randint(MIN_DURATION, MAX_DURATION)
        finish = rng.randrange(end_ts - 12 * 3600, end_ts)
        hidden.append(gen.session(rng, first + i, finish - duration, finish, "late"))
    # New sessions start in [end, end + 50 min] and end before end + 1 h.
    for i in range(new):
        begin = end_ts + rng.randint(0, 50 * 60)
        duration = rng.randint(MIN_DURATION, min(MAX_DURATION, end_ts + 3599 - begin))
        hidden.append(gen.session(rng, first + late + i, begin, begin + duration, "new"))
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
    now: datetime | None = None,
) -> Dataset:
    """Generate the sandbox's rows; the same arguments always give the same rows.

    With `end` given, exactly `sessions` rows begin in [start, end). Without it ("live"), each
    UTC day has its own rows, `sessions` per 120 days, the same whenever the emulator starts;
    those inside [start, end] show. The last `idle_apps` apps have sessions only in the first
    fifth of the range: apps that went quiet months ago, next to busy ones. The sessions of the
    last `hidden_apps` apps are held back with the late and new ones.
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
    gen = _Generator(
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
    if live:
        visible = _live_sessions(gen, sessions, start_ts, end_ts, shape)
        held_rng = random.Random(f"kore-sandbox:{seed}:held")  # noqa: S311 - test data
    else:
        visible = _fixed_sessions(gen, sessions, start_ts, end_ts, shape)
        held_rng = gen.rng
    hidden = _held_back(gen, held_rng, first=sessions, late=late, new=new, end_ts=end_ts)
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
    )


class Index:
    """Per-app rows sorted by the filter time, for bisecting a fromDate/toDate window."""

    def __init__(self, sessions: Iterable[Session], filter_field: str) -> None:
        if filter_field not in FILTER_FIELDS:
            raise ValueError(f"filter_field must be one of {FILTER_FIELDS}")
        self.filter_field = filter_field
        grouped: dict[str, list[Session]] = {}
        for session in sessions:
            grouped.setdefault(session.bot_id, []).append(session)
        self._keys: dict[str, list[int]] = {}
        self._rows: dict[str, list[Session]] = {}
        for bot_id, rows in grouped.items():
            rows.sort(key=lambda s: (s.key(filter_field), s.order))
            self._rows[bot_id] = rows
            self._keys[bot_id] = [s.key(filter_field) for s in rows]

    def select(
        self, bot_ids: Iterable[str], lo: int, hi: int, channel: str | None
    ) -> list[Session]:
        """Rows of these apps with lo <= filter time <= hi, in the API's shuffled order."""
        found: list[Session] = []
        for bot_id in bot_ids:
            keys = self._keys.get(bot_id)
            if not keys:
                continue
            rows = self._rows[bot_id][bisect.bisect_left(keys, lo) : bisect.bisect_right(keys, hi)]
            if channel is not None:
                rows = [s for s in rows if s.channel == channel]
            found.extend(rows)
        found.sort(key=lambda s: s.order)
        return found

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
NOTIFICATION_TYPES = ("Alert Notifications", "Proactive Notifications")
MIN_DURATION = 10
MAX_DURATION = 40 * 60

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
        extra_field_fraction: float,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.channels = list(channels)
        self.render = Renderer(tz)
        self.notification_fraction = notification_fraction
        self.extra_field_fraction = extra_field_fraction
        self.bot_ids = [f"st-{self._uuid()}" for _ in range(apps)]
        self.users: list[tuple[str, dict[str, str]]] = []
        self.used_ids: set[str] = set()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _hex24(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

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

    def session(self, index: int, start: int, end: int, kind: str) -> Session:
        rng = self.rng
        bot_id = self.bot_ids[index % len(self.bot_ids)]
        channel = self.channels[(index // len(self.bot_ids)) % len(self.channels)]
        kore_user, channel_users = self.users[rng.randrange(len(self.users))]
        billing_id = self._hex24()
        while billing_id in self.used_ids:
            billing_id = self._hex24()
        self.used_ids.add(billing_id)
        notification = rng.random() < self.notification_fraction
        session_type = rng.choice(NOTIFICATION_TYPES) if notification else CONVERSATIONS
        raw: dict[str, object] = {
            "botId": bot_id,
            "channel": channel,
            "koreUserId": kore_user,
            "channelUserId": channel_users[channel],
            "billingSessionType": session_type,
        }
        if not notification:
            conv_start, conv_end = start, end
            if rng.random() < 0.5:
                third = (end - start) // 3
                conv_start = start + rng.randint(0, third)
                conv_end = end - rng.randint(0, third)
            raw["conversationSessionId"] = self._hex24()
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


def generate(
    *,
    seed: int,
    apps: int,
    channels: Sequence[str],
    sessions: int,
    late: int,
    new: int,
    start: datetime,
    end: datetime,
    tz: str,
    filter_field: str,
    notification_fraction: float,
    extra_field_fraction: float,
    boundary_fraction: float,
    idle_apps: int = 0,
) -> Dataset:
    """Generate the sandbox's rows; the same arguments always give the same rows.

    The last `idle_apps` apps have sessions only in the first fifth of the range: apps that
    went quiet months ago, next to busy ones.
    """
    if apps < 1 or not channels:
        raise ValueError("need at least one app and one channel")
    if not 0 <= idle_apps < apps:
        raise ValueError("idle_apps must leave at least one busy app")
    if min(sessions, late, new) < 0:
        raise ValueError("session counts must be >= 0")
    start_ts, end_ts = _ceil_epoch(start), _ceil_epoch(end)
    if end_ts <= start_ts:
        raise ValueError("start must be before end")
    gen = _Generator(
        seed=seed,
        apps=apps,
        channels=channels,
        tz=tz,
        notification_fraction=notification_fraction,
        extra_field_fraction=extra_field_fraction,
    )
    gen.make_users(min(max(10, sessions // 10), 20_000))
    rng = gen.rng

    # Midnights (UTC) at which boundary sessions sit; for filter_field="end" the start must still
    # fall in [start, end), hence the margin of one maximal duration.
    first_ok = start_ts + (MAX_DURATION if filter_field == "end" else 0)
    first_midnight = -(-first_ok // DAY) * DAY
    midnights = range(first_midnight, end_ts, DAY)

    visible: list[Session] = []
    for i in range(sessions):
        duration = rng.randint(MIN_DURATION, MAX_DURATION)
        if midnights and rng.random() < boundary_fraction:
            midnight = rng.choice(midnights)
            begin = midnight if filter_field == "start" else midnight - duration
        else:
            begin = rng.randrange(start_ts, end_ts)
        index = i
        busy = apps - idle_apps
        if index % apps >= busy and begin > start_ts + (end_ts - start_ts) // 5:
            index -= index % apps - index % busy  # an idle app's late session goes to a busy one
        visible.append(gen.session(index, begin, begin + duration, "base"))

    hidden: list[Session] = []
    # Late arrivals ended in the 12 hours before `end`: inside windows a tap has already read.
    for i in range(late):
        duration = rng.randint(MIN_DURATION, MAX_DURATION)
        finish = rng.randrange(end_ts - 12 * 3600, end_ts)
        hidden.append(gen.session(sessions + i, finish - duration, finish, "late"))
    # New sessions start in [end, end + 50 min] and end before end + 1 h.
    for i in range(new):
        begin = end_ts + rng.randint(0, 50 * 60)
        duration = rng.randint(MIN_DURATION, min(MAX_DURATION, end_ts + 3599 - begin))
        hidden.append(gen.session(sessions + late + i, begin, begin + duration, "new"))

    present = {s.channel for s in visible} | {s.channel for s in hidden}
    return Dataset(
        bot_ids=gen.bot_ids,
        channels=[c for c in gen.channels if c in present],
        start=datetime.fromtimestamp(start_ts, UTC),
        end=datetime.fromtimestamp(end_ts, UTC),
        visible=visible,
        hidden=hidden,
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

"""The sandbox's rows: billing sessions rendered as the API renders them, and their index.

Every row is rendered to its JSON bytes once, at generation time, so serving a page is a slice
and a join. Times are whole epoch seconds internally; only the rendered strings carry a zone.
Which rows exist is decided in `generation.py`; `Generator` makes each one.
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

from tap_kore_billing.sandbox.billing import Occupancy, type_odds, windows

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
User = tuple[str, dict[str, str]]  # koreUserId, channelUserId per channel

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
    planted: list[dict[str, object]] = field(default_factory=list)  # audit cases (planted.py)


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


class Generator:
    """Makes the rows of one seed: app IDs, users, and billing sessions rendered as served."""

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
        self.notification_odds, self.plain_odds = type_odds(
            notification_fraction, plain_session_fraction
        )
        self.extra_field_fraction = extra_field_fraction
        self.bot_ids = [f"st-{self._uuid()}" for _ in range(apps)]
        self.users: list[User] = []
        self.used_ids: set[str] = set()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def make_users(self, count: int) -> None:
        for _ in range(count):
            self.users.append(self.new_user(self.rng))

    def new_user(self, rng: random.Random) -> User:
        """A koreUserId and its channelUserId on each channel."""
        kore = f"u-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        per_channel = {}
        for channel in self.channels:
            if channel.lower() == "ivr":
                per_channel[channel] = f"+1555{rng.randrange(10**7):07d}"
            else:
                per_channel[channel] = f"{rng.getrandbits(128):032x}"
        return kore, per_channel

    def unique_id(self, rng: random.Random) -> str:
        """A billingSessionId no other row has."""
        billing_id = hex24(rng)
        while billing_id in self.used_ids:
            billing_id = hex24(rng)
        self.used_ids.add(billing_id)
        return billing_id

    def draw_type(self, rng: random.Random) -> str:
        """The billingSessionType of one activity (a conversation yields several rows)."""
        roll = rng.random()
        if roll < self.notification_odds:
            return rng.choice(NOTIFICATION_TYPES)
        if roll < self.notification_odds + self.plain_odds:
            return PLAIN_SESSIONS
        return CONVERSATIONS

    def app_and_channel(self, slot: int) -> tuple[str, str]:
        """The slot picks the app, then the channel, in turn."""
        apps = len(self.bot_ids)
        return self.bot_ids[slot % apps], self.channels[(slot // apps) % len(self.channels)]

    def activity(  # noqa: PLR0917 - one call shape per generator loop
        self,
        rng: random.Random,
        occupancy: Occupancy,
        pool: range,
        slot: int,
        session_type: str,
        begin: int,
        length: int,
        kind: str,
    ) -> list[Session]:
        """One user's activity of `length` seconds from `begin`: a conversation's billing
        sessions, or a single notification or `Sessions` row. The user is drawn from `pool`
        (user positions); one already billed then on that app and channel passes to the next."""
        bot_id, channel = self.app_and_channel(slot)
        finish = begin + length
        drawn = rng.randrange(len(pool))
        for step in range(len(pool)):
            user = self.users[pool[(drawn + step) % len(pool)]]
            if occupancy.free((user[0], bot_id, channel), begin, finish):
                break
        else:
            raise ValueError("too many sessions at once for the generated users")
        occupancy.take((user[0], bot_id, channel), begin, finish)
        if session_type != CONVERSATIONS:
            conversation = None
            spans = [(begin, finish)]
        else:
            conversation = (hex24(rng), self.render(begin), self.render(finish))
            spans = windows(begin, length)
        rows = []
        for start, end in spans:
            extra = rng.random() < self.extra_field_fraction
            rows.append(
                self.row(
                    bot_id=bot_id,
                    channel=channel,
                    user=user,
                    session_type=session_type,
                    billing_id=self.unique_id(rng),
                    span=(start, end),
                    conversation=conversation,
                    kind=kind,
                    extra=rng.choice(_EXTRA_FIELDS) if extra else None,
                )
            )
        return rows

    def row(
        self,
        *,
        bot_id: str,
        channel: str,
        user: User,
        session_type: str,
        billing_id: str,
        span: tuple[int, int],
        conversation: tuple[str, str, str] | None,
        kind: str,
        extra: dict[str, object] | None = None,
    ) -> Session:
        """One billing session, rendered; `conversation` is its conversation session's ID,
        start and end as rendered (`Conversations` rows only)."""
        raw: dict[str, object] = {
            "botId": bot_id,
            "channel": channel,
            "koreUserId": user[0],
            "channelUserId": user[1][channel],
            "billingSessionType": session_type,
        }
        if conversation is not None:
            raw["conversationSessionId"] = conversation[0]
            raw["conversationSessionStartDateTime"] = conversation[1]
            raw["conversationSessionEndDateTime"] = conversation[2]
        raw["billingSessionId"] = billing_id
        raw["billingSessionStartDateTime"] = self.render(span[0])
        raw["billingSessionEndDateTime"] = self.render(span[1])
        if extra is not None:
            raw.update(extra)
        return Session(
            id=billing_id,
            bot_id=bot_id,
            channel=channel,
            type=session_type,
            start=span[0],
            end=span[1],
            order=order_key(self.seed, billing_id),
            kind=kind,
            raw=raw,
            blob=dumps(raw),
            extra=extra is not None,
        )


def hex24(rng: random.Random) -> str:
    """24 hex digits, the shape of Kore.ai's session IDs."""
    return f"{rng.getrandbits(96):024x}"


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

"""Billing sessions made by hand for the audit models (transform/models/audit), with what the
audit must find in them: each finding at its edges, clean accounts drawn from a seed, and cases
planted in those on days and apps drawn from the same seed.

Rows use the tap's field names (camelCase) and naive UTC datetimes; each test writes them in its
loader's shape. Billing rule (../shared/kore-api/billing-rules.md): one billing session is at
most 15 minutes of a user's activity; a conversation of L seconds holds ceil(L / 900) of them,
back to back.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

TOLERANCE = 60  # the default of var kore_billing_audit_tolerance_seconds
WINDOW = 900
LONGER = "longer_than_15_minutes"
OVERLAPS = "overlaps_another_session"
OUTSIDE = "outside_its_conversation"
FINDINGS = (LONGER, OVERLAPS, OUTSIDE)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@dataclass
class Account:
    """Rows, and what the audit must say about them."""

    rows: list[dict] = field(default_factory=list)
    # (billing_session_id, finding) -> other_billing_session_id (overlaps) or None
    findings: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # (bot_id, conversation_session_id) -> (billing_sessions, expected_at_most, excess_sessions)
    conversations: dict[tuple[str, str], tuple[int, int | None, int]] = field(default_factory=dict)
    # (bot_id, day of its first billing session, excess_sessions) of each over-counted one
    over_counted: list[tuple[str, date, int]] = field(default_factory=list)
    ids: int = 0
    users: int = 0

    def next_id(self, prefix: str = "bs") -> str:
        self.ids += 1
        return f"{prefix}{self.ids:022d}"

    def user(self) -> str:
        self.users += 1
        return f"u-{self.users:06d}"

    def session(
        self,
        bot: str,
        user: str | None,
        start: datetime | None,
        end: datetime | None,
        *,
        kind: str | None = "Conversations",
        channel: str | None = "rtm",
        conversation: tuple[str, datetime | None, datetime | None] | None = None,
        session_id: str | None = None,
    ) -> str:
        """One billing session row; returns its billingSessionId."""
        session_id = session_id or self.next_id()
        conv_id, conv_start, conv_end = conversation or (None, None, None)
        self.rows.append(
            {
                "billingSessionId": session_id,
                "botId": bot,
                "channel": channel,
                "billingSessionType": kind,
                "billingSessionStartDateTime": start,
                "billingSessionEndDateTime": end,
                "conversationSessionId": conv_id,
                "conversationSessionStartDateTime": conv_start,
                "conversationSessionEndDateTime": conv_end,
                "koreUserId": user,
                "channelUserId": None if user is None else f"c-{user}",
            }
        )
        return session_id

    def conversation(
        self,
        bot: str,
        user: str,
        start: datetime,
        length: int,
        *,
        splits: list[tuple[int, int]] | None = None,
        channel: str = "rtm",
    ) -> list[str]:
        """A conversation of `length` seconds and its billing sessions: `splits` as (from, to)
        seconds after its start, by default back to back as Kore.ai bills, ceil(length / 900)."""
        conv_id = self.next_id("cs")
        end = start + seconds(length)
        if splits is None:
            count = max(1, math.ceil(length / WINDOW))
            splits = [(i * WINDOW, min((i + 1) * WINDOW, length)) for i in range(count)]
        ids = [
            self.session(
                bot,
                user,
                start + seconds(a),
                start + seconds(b),
                channel=channel,
                conversation=(conv_id, start, end),
            )
            for a, b in splits
        ]
        expected = max(1, math.ceil(length / WINDOW))
        excess = max(0, len(ids) - expected)
        self.conversations[bot, conv_id] = (len(ids), expected, excess)
        if excess:
            self.over_counted.append((bot, (start + seconds(splits[0][0])).date(), excess))
        return ids

    def expect(self, session_id: str, finding: str, other: str | None = None) -> None:
        self.findings[session_id, finding] = other

    def day_of(self, session_id: str) -> tuple[str, date]:
        row = next(r for r in self.rows if r["billingSessionId"] == session_id)
        return row["botId"], row["billingSessionStartDateTime"].date()


EDGE_BOT = "st-edge0000-0000-0000-0000-000000000001"
EDGE_DAY = datetime(2025, 3, 3)


def edge_account() -> Account:
    """Each finding at its edges, on one app and day (10:00 UTC onwards), one user per case so
    that no two cases meet; the rows a finding cannot judge; nulls in every field a rule reads."""
    acc = Account()
    bot, at = EDGE_BOT, EDGE_DAY.replace(hour=10)
    # Length: exactly 15:00, 15:00 + tolerance (not flagged); 15:00 + tolerance + 1 s (flagged).
    acc.conversation(bot, acc.user(), at, WINDOW, splits=[(0, WINDOW)])
    acc.conversation(bot, acc.user(), at, WINDOW + TOLERANCE, splits=[(0, WINDOW + TOLERANCE)])
    [long_one] = acc.conversation(
        bot, acc.user(), at, WINDOW + TOLERANCE + 1, splits=[(0, WINDOW + TOLERANCE + 1)]
    )
    acc.expect(long_one, LONGER)
    # The older type, no conversation: the same length rule.
    plain_user = acc.user()
    plain = acc.session(bot, plain_user, at, at + seconds(1200), kind="Sessions")
    acc.expect(plain, LONGER)
    # Overlap: touching; shared by exactly the tolerance; shared by the tolerance + 1 s.
    touching_user = acc.user()
    acc.conversation(bot, touching_user, at, 2 * WINDOW)
    shared = WINDOW - TOLERANCE
    acc.conversation(
        bot, acc.user(), at, shared + WINDOW, splits=[(0, WINDOW), (shared, shared + WINDOW)]
    )
    first, later = acc.conversation(
        bot,
        acc.user(),
        at,
        shared - 1 + WINDOW,
        splits=[(0, WINDOW), (shared - 1, shared - 1 + WINDOW)],
    )
    acc.expect(later, OVERLAPS, first)
    # Equal starts (the older type): the greater billingSessionId is flagged, whatever the order,
    # by bytes on every warehouse ('C' < 'c', where PostgreSQL's usual collation says otherwise).
    equal_user = acc.user()
    for user, (greater_id, smaller_id) in (
        (equal_user, ("bs-equal-b", "bs-equal-a")),
        (acc.user(), ("bs-cased-a", "bs-Cased-B")),
    ):
        greater = acc.session(
            bot, user, at, at + seconds(600), kind="Sessions", session_id=greater_id
        )
        smaller = acc.session(
            bot, user, at, at + seconds(300), kind="Sessions", session_id=smaller_id
        )
        acc.expect(greater, OVERLAPS, smaller)
    # Several earlier sessions: the one shared with the most is named. C shares 2 minutes with
    # B and none with A, which B overlaps by 9 minutes.
    several = acc.user()
    a, b, c = (
        acc.session(bot, several, at + seconds(m * 60), at + seconds(n * 60), kind="Sessions")
        for m, n in ((0, 10), (1, 14), (12, 22))
    )
    acc.expect(b, OVERLAPS, a)
    acc.expect(c, OVERLAPS, b)
    # The same user on another channel, or another app, is not an overlap.
    acc.session(bot, equal_user, at, at + seconds(600), kind="Sessions", channel="ivr")
    acc.session(
        "st-edge0000-0000-0000-0000-000000000002",
        equal_user,
        at,
        at + seconds(600),
        kind="Sessions",
    )
    # Conversations of 15:00 (one billing session expected) and 15:01 (two), each billed twice.
    acc.conversation(bot, acc.user(), at, WINDOW, splits=[(0, 450), (450, WINDOW)])
    acc.conversation(bot, acc.user(), at, WINDOW + 1)
    # Outside: starting the tolerance before its conversation (not flagged), tolerance + 1 s
    # before, ending tolerance + 1 s after.
    for shift, flagged in ((-TOLERANCE, False), (-TOLERANCE - 1, True), (TOLERANCE + 1, True)):
        user, conv_id = acc.user(), acc.next_id("cs")
        conv_start = at + seconds(max(0, -shift))
        conv = (conv_id, conv_start, conv_start + seconds(WINDOW))
        start = conv_start + seconds(shift)
        session_id = acc.session(bot, user, start, start + seconds(WINDOW), conversation=conv)
        acc.conversations[bot, conv_id] = (1, 1, 0)
        if flagged:
            acc.expect(session_id, OUTSIDE)
    # No end, starting tolerance + 1 s before its conversation: flagged, its detail whole.
    user, conv_id = acc.user(), acc.next_id("cs")
    conv = (conv_id, at + seconds(TOLERANCE + 1), at + seconds(WINDOW))
    no_end = acc.session(bot, user, at, None, conversation=conv)
    acc.conversations[bot, conv_id] = (1, 1, 0)
    acc.expect(no_end, OUTSIDE)
    # Notifications: no conversation, so no conversation rule; billed one each, so neither the
    # length nor the overlap rule (40 minutes, over a conversation of their user).
    acc.session(bot, touching_user, at, at + seconds(2400), kind="Alert Notifications")
    acc.session(bot, touching_user, at, at + seconds(2400), kind="Proactive Notifications")
    acc.session(bot, plain_user, at, at + seconds(600), kind="Alert Notifications")
    # Nulls: no user, no channel, no end, no start, no type, a conversation without times.
    acc.session(bot, None, at, at + seconds(600), kind="Sessions")
    acc.session(bot, None, at, at + seconds(600), kind="Sessions")
    null_channel = acc.user()
    acc.session(bot, null_channel, at, at + seconds(600), channel=None, kind="Sessions")
    acc.session(bot, null_channel, at, at + seconds(600), channel=None, kind="Sessions")
    acc.session(bot, acc.user(), at, None, conversation=("cs-no-end", at, None))
    acc.conversations[bot, "cs-no-end"] = (1, None, 0)
    acc.session(bot, acc.user(), None, at, kind="Sessions")
    acc.session(bot, acc.user(), at, at + seconds(2400), kind=None)
    acc.session(bot, acc.user(), at, at + seconds(600), conversation=("cs-no-times", None, None))
    acc.conversations[bot, "cs-no-times"] = (1, None, 0)
    return acc


CHANNELS = ("rtm", "ivr", "msteams")
NOTIFICATIONS = ("Alert Notifications", "Proactive Notifications")


def clean_account(rng: random.Random, apps: list[str], days: list[date]) -> Account:
    """Sessions that keep the rule, as Kore.ai bills: each user's conversations one after the
    other (sometimes touching), each billed back to back, ceil(L / 900) times; sessions of the
    older type of at most 15 minutes; notifications at any time, over conversations too."""
    acc = Account()
    for bot in apps:
        for day in days:
            midnight = datetime.combine(day, datetime.min.time())
            for _ in range(rng.randint(2, 5)):
                user, channel = acc.user(), rng.choice(CHANNELS)
                at = midnight + seconds(rng.randrange(0, 20 * 3600))
                for _ in range(rng.randint(1, 3)):
                    length = rng.choice((rng.randint(1, 3600), WINDOW * rng.randint(1, 3)))
                    if rng.random() < 0.3:
                        kind_start = at
                        end = at + seconds(rng.randint(1, WINDOW))
                        acc.session(bot, user, kind_start, end, kind="Sessions", channel=channel)
                        at = end + seconds(rng.choice((0, rng.randint(1, 7200))))
                        continue
                    acc.conversation(bot, user, at, length, channel=channel)
                    if rng.random() < 0.4:
                        note = at + seconds(rng.randint(0, length))
                        acc.session(
                            bot,
                            user,
                            note,
                            note + seconds(rng.randint(0, 3600)),
                            kind=rng.choice(NOTIFICATIONS),
                            channel=channel,
                        )
                    at += seconds(length + rng.choice((0, rng.randint(1, 7200))))
    return acc


def plant(acc: Account, rng: random.Random, bot: str, day: date, finding: str | None) -> None:
    """One case that breaks one rule only, for a new user of `bot` on `day`: a finding of the
    session audit, or (finding None) an over-counted conversation."""
    user = acc.user()
    at = datetime.combine(day, datetime.min.time()) + seconds(rng.randrange(0, 22 * 3600))
    if finding == LONGER:
        length = rng.randint(WINDOW + TOLERANCE + 1, 3600)
        [session_id] = acc.conversation(bot, user, at, length, splits=[(0, length)])
        acc.expect(session_id, LONGER)
    elif finding == OVERLAPS:
        length, shared = rng.randint(1000, 1700), rng.randint(TOLERANCE + 1, 100)
        first, later = acc.conversation(
            bot, user, at, length, splits=[(0, WINDOW), (WINDOW - shared, length)]
        )
        acc.expect(later, OVERLAPS, first)
    elif finding == OUTSIDE:
        length, shift = rng.randint(60, WINDOW), rng.randint(TOLERANCE + 1, 600)
        shift = shift if rng.random() < 0.5 else -shift
        conv_id = acc.next_id("cs")
        conversation = (conv_id, at, at + seconds(length))
        start = at + seconds(shift)
        session_id = acc.session(
            bot, user, start, start + seconds(length), conversation=conversation
        )
        acc.conversations[bot, conv_id] = (1, 1, 0)
        acc.expect(session_id, OUTSIDE)
    else:  # over-counted: more billing sessions than 15-minute windows, none of them wrong
        length = rng.randint(60, 2700)
        count = max(1, math.ceil(length / WINDOW)) + rng.randint(1, 2)
        cuts = [length * i // count for i in range(count + 1)]
        acc.conversation(bot, user, at, length, splits=list(itertools.pairwise(cuts)))


def equal_start_case(acc: Account, rng: random.Random, bot: str, day: date) -> None:
    """Two sessions of the older type starting the same second: the greater ID is flagged."""
    user = acc.user()
    at = datetime.combine(day, datetime.min.time()) + seconds(rng.randrange(0, 22 * 3600))
    a, b = (f"{rng.getrandbits(96):024x}" for _ in range(2))
    for session_id in (a, b):
        end = at + seconds(rng.randint(TOLERANCE + 1, WINDOW))
        acc.session(bot, user, at, end, kind="Sessions", session_id=session_id)
    acc.expect(max(a, b), OVERLAPS, min(a, b))


def daily_expectation(acc: Account) -> dict[tuple[str, date], dict[str, int]]:
    """(bot_id, day) -> the audit_daily counts the planted cases give, for days with any."""
    days: dict[tuple[str, date], Counter] = {}
    for (session_id, finding), _ in acc.findings.items():
        days.setdefault(acc.day_of(session_id), Counter())[finding] += 1
    for bot, day, excess in acc.over_counted:
        days.setdefault((bot, day), Counter())["excess_sessions"] += excess
        days[bot, day]["over_counted_conversations"] += 1
    return {key: dict(counts) for key, counts in days.items()}

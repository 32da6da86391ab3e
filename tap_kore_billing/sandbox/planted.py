"""Audit cases planted in the sandbox's data: billing sessions that break one billing rule each.

A case is FINDING:APP:DAY (APP the app's 1-based position, DAY a UTC date). It is one
conversation of a user of its own, on one channel, starting between 01:00 and 21:00 UTC of that
day and over within 35 minutes; its times and IDs follow from the seed, the finding, the app
and the day alone, so a demo can name them. Each breaks its own rule by minutes and keeps
every other one:

- `longer_than_15_minutes`: a conversation of 26 to 30 minutes billed twice, back to back; the
  first session lasts 18 to 25 minutes.
- `overlaps_another_session`: a conversation of 20 to 23 minutes billed twice, 14 minutes each,
  one from its start, one up to its end: the second starts 5 to 8 minutes before the first ends.
- `outside_its_conversation`: a conversation of 6 to 9 minutes billed once, the session ending
  3 to 5 minutes after it (14 minutes at most).
- `over_counted`: a conversation of 10 to 13 minutes billed three times, back to back (two
  sessions more than its one).

The rows are ordinary `Conversations` rows: the usage summary counts them like any other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from tap_kore_billing.sandbox.data import CONVERSATIONS, Generator, Session, hex24

LONGER = "longer_than_15_minutes"
OVERLAPS = "overlaps_another_session"
OUTSIDE = "outside_its_conversation"
OVER_COUNTED = "over_counted"
FINDINGS = (LONGER, OVERLAPS, OUTSIDE, OVER_COUNTED)
FIRST_HOUR, LAST_HOUR = 1, 21  # a case's conversation starts in [01:00, 21:00) UTC


@dataclass(frozen=True)
class AuditCase:
    """One case to plant: which rule it breaks, on which app (1-based) and UTC day."""

    finding: str
    app: int
    day: date

    def __str__(self) -> str:
        return f"{self.finding}:{self.app}:{self.day.isoformat()}"


def _case(item: object) -> AuditCase:
    if isinstance(item, AuditCase):
        return item
    if isinstance(item, dict):
        parts: list[object] = [item.get("finding"), item.get("app"), item.get("day")]
    elif isinstance(item, str):
        parts = list(item.strip().split(":"))
    elif isinstance(item, (tuple, list)):
        parts = list(item)
    else:
        raise TypeError(f"expected FINDING:APP:DAY, not {item!r}")
    if len(parts) != 3:
        raise ValueError(f"expected FINDING:APP:DAY, not {item!r}")
    finding, app, day = parts
    if finding not in FINDINGS:
        raise ValueError(f"{item!r}: the finding must be one of {', '.join(FINDINGS)}")
    if isinstance(app, bool) or not str(app).isdigit() or int(str(app)) < 1:
        raise ValueError(f"{item!r}: APP is the app's 1-based position")
    when = day if isinstance(day, date) else date.fromisoformat(str(day))
    return AuditCase(str(finding), int(str(app)), when)


def audit_cases(value: object) -> tuple[AuditCase, ...]:
    """The knob's value: cases from "FINDING:APP:DAY,..." text or a sequence of such text,
    (finding, app, day) or {finding, app, day}; each case once, in the order given."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise TypeError("expected FINDING:APP:DAY items")
    else:
        items = value
    return tuple(dict.fromkeys(_case(item) for item in items))


@dataclass(frozen=True)
class _Layout:
    """A case's conversation (length in seconds) and its billing sessions as offsets from the
    conversation's start; `flagged` are the sessions the finding names, `other` the earlier
    session an overlap overlaps."""

    length: int
    sessions: tuple[tuple[int, int], ...]
    flagged: tuple[int, ...]
    other: int | None = None


def _layout(finding: str, rng: random.Random) -> _Layout:
    minute = 60
    if finding == LONGER:
        length = rng.randint(26 * minute, 30 * minute)
        cut = length - rng.randint(5 * minute, 8 * minute)
        return _Layout(length, ((0, cut), (cut, length)), (0,))
    if finding == OVERLAPS:
        length = rng.randint(20 * minute, 23 * minute)
        each = 14 * minute
        return _Layout(length, ((0, each), (length - each, length)), (1,), other=0)
    if finding == OUTSIDE:
        length = rng.randint(6 * minute, 9 * minute)
        return _Layout(length, ((0, length + rng.randint(3 * minute, 5 * minute)),), (0,))
    length = rng.randint(10 * minute, 13 * minute)
    third = length // 3
    return _Layout(length, ((0, third), (third, 2 * third), (2 * third, length)), (0, 1, 2))


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def plant(
    gen: Generator, cases: Sequence[AuditCase], start_ts: int, end_ts: int
) -> tuple[list[Session], list[dict[str, object]]]:
    """The rows of every case, and what each case is (Sandbox.planted_audit_cases())."""
    rows: list[Session] = []
    listed: list[dict[str, object]] = []
    for case in cases:
        if case.app > len(gen.bot_ids):
            raise ValueError(
                f"audit case {case}: no app number {case.app} (the account has "
                f"{len(gen.bot_ids)} apps)"
            )
        rng = random.Random(f"kore-sandbox:{gen.seed}:audit:{case}")  # noqa: S311 - test data
        layout = _layout(case.finding, rng)
        midnight = int(datetime.combine(case.day, datetime.min.time(), timezone.utc).timestamp())
        begin = midnight + rng.randrange(FIRST_HOUR * 3600, LAST_HOUR * 3600)
        last = begin + max(layout.length, *(end for _, end in layout.sessions))
        if begin < start_ts or last > end_ts:
            raise ValueError(
                f"audit case {case}: its rows ({_iso(begin)} .. {_iso(last)}) lie outside the "
                f"data's range {_iso(start_ts)} .. {_iso(end_ts)}"
            )
        bot_id = gen.bot_ids[case.app - 1]
        channel = rng.choice(gen.channels)
        user = gen.new_user(rng)
        finish = begin + layout.length
        conversation = (hex24(rng), gen.render(begin), gen.render(finish))
        made = [
            gen.row(
                bot_id=bot_id,
                channel=channel,
                user=user,
                session_type=CONVERSATIONS,
                billing_id=gen.unique_id(rng),
                span=(begin + offset, begin + until),
                conversation=conversation,
                kind="planted",
            )
            for offset, until in layout.sessions
        ]
        rows.extend(made)
        listed.append(
            {
                "finding": case.finding,
                "app": case.app,
                "botId": bot_id,
                "day": case.day.isoformat(),
                "channel": channel,
                "koreUserId": user[0],
                "conversationSessionId": conversation[0],
                "billingSessionIds": [made[i].id for i in layout.flagged],
                "otherBillingSessionId": None if layout.other is None else made[layout.other].id,
                "addedBillingSessionIds": [row.id for row in made],
                "excessSessions": len(made) - 1 if case.finding == OVER_COUNTED else 0,
            }
        )
    return rows, listed

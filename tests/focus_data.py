"""A random account for the FOCUS model (kore_billing__focus), with what its rows must be.

Drawn from a seed: two to four apps, days across a month's end, every billing session type (one
of the notification or older types left without a price), over-counted conversations (one
started before midnight and first billed after it), a usage summary per app and day that
sometimes bills more than was found (and once bills a day without sessions), an app group `ALL`
that is no app, and an app the apps stream does not name. The expectation is computed here from
the rows, as the model's documentation says, not from SQL.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from audit_data import Account, clean_account, plant, seconds

TYPES = ("Conversations", "Sessions", "Alert Notifications", "Proactive Notifications")
UNITS = dict(
    zip(
        TYPES,
        ("conversations", "sessions", "alert_notifications", "proactive_notifications"),
        strict=True,
    )
)
CURRENCIES = ("USD", "EUR", "JPY", "GBP")


@dataclass
class FocusCase:
    """Rows for the loader's tables, the dbt vars, and the FOCUS rows they must give."""

    seed: int
    account: Account
    summaries: list[dict]
    apps: list[dict]
    names: dict[str, str]
    prices: dict[str, Decimal]
    unpriced: str
    currency: str
    account_id: str
    # (bot_id, day, type) -> (quantity, summary counter or None, excess sessions), priced only
    expected: dict[tuple[str, date, str], tuple[int, int | None, int]] = field(default_factory=dict)

    @property
    def dbt_vars(self) -> dict:
        return {
            "kore_billing_price_per_session": {k: float(v) for k, v in self.prices.items()},
            "kore_billing_currency": self.currency,
            "kore_billing_account_id": self.account_id,
        }


def focus_case(seed: int) -> FocusCase:
    rng = random.Random(seed)  # noqa: S311 - test data
    apps = [f"st-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(rng.randint(2, 4))]
    month = rng.randint(1, 12)
    next_month = date(2025 + month // 12, month % 12 + 1, 1)
    first = next_month - timedelta(days=rng.randint(2, 4))  # 5 days or more: across
    days = [first + timedelta(days=n) for n in range(rng.randint(5, 8))]  # across month's end
    acc = clean_account(rng, apps, days)
    for kind in TYPES:  # every type at least once, whatever the draw
        at = datetime.combine(rng.choice(days), datetime.min.time()) + seconds(3600)
        acc.session(rng.choice(apps), acc.user(), at, at + seconds(300), kind=kind)
    for _ in range(rng.randint(1, 3)):
        plant(acc, rng, rng.choice(apps), rng.choice(days), None)  # an over-counted one
    # Over-counted, started at 23:55 and first billed after midnight: the excess is dated by
    # the conversation's start, the sessions each by their own.
    late = datetime.combine(rng.choice(days[:-1]), datetime.min.time()) + seconds(86_100)
    acc.conversation(
        rng.choice(apps), acc.user(), late, 1700, splits=[(600, 1200), (1200, 1500), (1500, 1700)]
    )
    unpriced = rng.choice(TYPES[1:])  # Conversations keeps its price: the excess is priced
    prices = {kind: Decimal(rng.randint(1, 500)) / 10_000 for kind in TYPES if kind != unpriced}
    summaries = summary_rows(acc, rng, apps, days)
    names = {bot: f"App {n}" for n, bot in enumerate(apps[:-1], 1)}  # the last one unnamed
    app_rows = [
        {"botId": bot, "name": name, "status": "published", "source": "get_bots"}
        for bot, name in names.items()
    ]
    case = FocusCase(
        seed,
        acc,
        summaries,
        app_rows,
        names,
        prices,
        unpriced,
        rng.choice(CURRENCIES),
        f"acct-{rng.randrange(10**6):06d}",
    )
    case.expected = expected_rows(case)
    return case


def summary_rows(acc: Account, rng: random.Random, apps: list[str], days: list[date]) -> list[dict]:
    """Day counters per app as the summary reports them: those of the rows, sometimes more;
    one day before the first with a counter and no session; a row of the group ALL."""
    counted = Counter(
        (r["botId"], r["billingSessionStartDateTime"].date(), UNITS[r["billingSessionType"]])
        for r in acc.rows
    )
    summaries = []
    for bot in apps:
        for day in [days[0] - timedelta(days=1), *days]:
            counters = {unit: counted[bot, day, unit] for unit in UNITS.values()}
            if rng.random() < 0.3:
                counters[rng.choice(list(UNITS.values()))] += rng.randint(1, 3)
            summaries.append(summary(bot, day, counters))
    lonely = next(row for row in summaries if row["periodstart"].date() < days[0])
    lonely["conversations"] += 2  # billed where nothing was found
    summaries.append(summary("ALL", days[0], dict.fromkeys(UNITS.values(), 99)))
    return summaries


def summary(bot: str, day: date, counters: dict[str, int]) -> dict:
    start = datetime.combine(day, datetime.min.time())
    return {"botid": bot, "granularity": "day", "periodstart": start, "requests": 0, **counters}


def expected_rows(case: FocusCase) -> dict[tuple[str, date, str], tuple[int, int | None, int]]:
    found = Counter(
        (r["botId"], r["billingSessionStartDateTime"].date(), r["billingSessionType"])
        for r in case.account.rows
    )
    billed = {
        (row["botid"], row["periodstart"].date(), kind): row[UNITS[kind]]
        for row in case.summaries
        if row["botid"] != "ALL"
        for kind in TYPES
    }
    excess = Counter[tuple[str, date, str]]()
    started = {
        (r["botId"], r["conversationSessionId"]): r["conversationSessionStartDateTime"].date()
        for r in case.account.rows
        if r["conversationSessionId"]
    }
    for (bot, conversation), (_, _, extra) in case.account.conversations.items():
        if extra:
            excess[bot, started[bot, conversation], "Conversations"] += extra
    keys = set(found) | {key for key, n in billed.items() if n > 0} | set(excess)
    return {
        key: (found[key], billed.get(key), excess[key]) for key in keys if key[2] in case.prices
    }

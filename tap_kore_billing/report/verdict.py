"""The demo's and the report's words for a finance reader (pure): the VERDICT line of the
reconciliation and the AUDIT line of the billing rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from tap_kore_billing.core.words import counted


def day_text(value: date) -> str:
    return f"{value.day} {value:%b}"


def difference_text(difference: int) -> str:
    if difference < 0:
        return f"{-difference} more billed than found"
    return f"{difference} more found than billed"


def mismatch_text(name: str, day: date, unit: str, difference: int) -> str:
    return f"{name}, {day_text(day)}, {unit.replace('_', ' ')}, {difference_text(difference)}"


def verdict_line(
    apps: int, days: int, first: date | None, last: date | None, mismatches: Sequence[tuple]
) -> str:
    """`VERDICT: ...`: the apps and days compared, and each closed app-day that differs
    (`mismatches`: name, day, unit, difference)."""
    head = "no data"
    if first and last:
        span = f"{day_text(first)} - {day_text(last)}, the last still open"
        head = f"{apps} apps, {days} days ({span})"
    if not mismatches:
        return f"VERDICT: {head}: every closed app-day matches the invoice's usage summary"
    listed = "; ".join(mismatch_text(*row) for row in mismatches)
    return f"VERDICT: {head}: every closed app-day matches except {len(mismatches)}: {listed}"


def audit_line(sessions: Sequence[tuple], conversations: Sequence[tuple]) -> str:
    """`AUDIT: ...`: how many billing sessions break the rule, how many are in excess, per app.
    `sessions` start with the app's name; `conversations` start with it and end with the
    excess sessions and the IDs billed in the conversation."""
    broken = Counter(app for app, *_ in sessions)
    excess = Counter[str]()
    for app, *_rest, extra, _ids in conversations:
        excess[app] += int(extra)
    if not broken and not excess:
        return "AUDIT: every billing session follows Kore.ai's 15-minute rule"
    per_app = []
    for app in sorted(set(broken) | set(excess)):
        said = [f"{broken[app]} breaking"] if broken[app] else []
        said += [f"{excess[app]} in excess"] if excess[app] else []
        per_app.append(f"{app} {', '.join(said)}")
    verb = "breaks" if len(sessions) == 1 else "break"
    return (
        f"AUDIT: {counted(len(sessions), 'billing session')} {verb} Kore.ai's 15-minute rule, "
        f"and over-counted conversations hold {counted(sum(excess.values()), 'billing session')} "
        f"in excess: {'; '.join(per_app)}"
    )

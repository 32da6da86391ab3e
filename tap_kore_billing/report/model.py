"""The query's rows (query.py) as what the page shows: the reconciliation per app and family,
the mismatches, the audit's findings with the IDs to quote, the audit per day, and the verdict
and audit lines (the demo's words, verdict.py). Pure: no I/O."""

from __future__ import annotations

import typing as t
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from tap_kore_billing.report.query import COLUMNS
from tap_kore_billing.report.verdict import audit_line, verdict_line

Row = dict[str, t.Any]  # query.COLUMNS: text or None
# Summary botId values standing for every app (dbt var all_apps_bot_ids' default).
ALL_APPS = "ALL"


def _int(text: str | None) -> int | None:
    return None if text is None or text == "" else int(Decimal(text))


def _money(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


def _day(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(str(text)[:10])


def _time(text: str | None) -> str:
    """A timestamp as every warehouse prints it alike: `YYYY-MM-DD HH:MM:SS` (UTC)."""
    return "" if not text else str(text).replace("T", " ")[:19]


@dataclass(frozen=True)
class Check:
    """One app (or family), period and unit: sessions found against sessions billed."""

    bot_id: str
    name: str
    granularity: str
    day: date
    unit: str
    found: int
    billed: int | None
    difference: int
    status: str
    amount: Decimal | None = None
    complete: bool = True


@dataclass(frozen=True)
class Finding:
    """A billing session that breaks a rule, or an over-counted conversation (`rule`
    `over_counted`, `ids` the billing sessions billed in it)."""

    bot_id: str
    name: str
    day: date
    rule: str
    id: str
    started: str
    ended: str
    detail: str
    ids: tuple[str, ...] = ()
    other_id: str = ""
    excess: int = 0
    amount: Decimal | None = None


@dataclass
class ReportData:
    checks: list[Check] = field(default_factory=list)
    families: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    daily: list[Row] = field(default_factory=list)
    apps: dict[str, str] = field(default_factory=dict)  # bot_id: name
    links: dict[str, list[str]] = field(default_factory=dict)  # parent: linked names
    priced: bool = False
    source: str = ""

    @property
    def mismatches(self) -> list[Check]:
        """Closed app-days that differ (the verdict's), by day, app and unit."""
        found = [c for c in self.checks if c.status == "mismatch" and c.granularity == "day"]
        return sorted(found, key=lambda c: (c.day, c.name, c.unit))

    def verdict(self) -> str:
        per_app = [c for c in self.checks if c.granularity == "day" and c.bot_id != ALL_APPS]
        days = sorted({c.day for c in per_app})
        return verdict_line(
            len({c.bot_id for c in per_app}),
            len(days),
            days[0] if days else None,
            days[-1] if days else None,
            [(c.name, c.day, c.unit, c.difference) for c in self.mismatches],
        )

    def audit(self) -> str:
        breaking = [(f.name,) for f in self.findings if f.rule != "over_counted"]
        over = [(f.name, f.excess, f.ids) for f in self.findings if f.rule == "over_counted"]
        return audit_line(breaking, over)

    def app_names(self) -> list[tuple[str, str]]:
        """(bot_id, name) of every app the reconciliation compares, by name."""
        seen = {c.bot_id: c.name for c in self.checks if c.bot_id != ALL_APPS}
        return sorted(seen.items(), key=lambda item: (item[1], item[0]))

    def ids_to_quote(self) -> list[str]:
        ids: list[str] = []
        for finding in self.findings:
            ids += [finding.id] if finding.rule != "over_counted" else list(finding.ids)
        return ids

    def disputed_days(self, bot_id: str) -> set[date]:
        return {f.day for f in self.findings if f.bot_id == bot_id}


def _check(row: Row, name: str) -> Check:
    return Check(
        bot_id=row["bot_id"],
        name=name,
        granularity=row["other"] or "day",
        day=_day(row["period"]) or date.min,
        unit=row["unit"],
        found=_int(row["n1"]) or 0,
        billed=_int(row["n2"]),
        difference=_int(row["n3"]) or 0,
        status=row["status"],
        amount=_money(row["a1"]),
        complete=row["detail"] != "incomplete",
    )


def build(rows: t.Iterable[t.Sequence[t.Any]], *, priced: bool, source: str) -> ReportData:
    """The query's rows (in COLUMNS order) as the page's data."""
    data = ReportData(priced=priced, source=source)
    by_kind: dict[t.Any, list[Row]] = defaultdict(list)
    for values in rows:
        row = dict(zip(COLUMNS, (None if v is None else str(v) for v in values), strict=True))
        by_kind[row["kind"]].append(row)
    data.apps = {row["bot_id"]: row["name"] or row["bot_id"] for row in by_kind["app"]}
    for row in by_kind["link"]:
        data.links.setdefault(str(row["bot_id"]), []).append(str(row["name"] or row["id"]))
    data.checks = [_check(row, row["name"] or row["bot_id"]) for row in by_kind["recon"]]
    data.families = [_check(row, row["name"] or row["bot_id"]) for row in by_kind["family"]]
    billed_in: dict[tuple[t.Any, t.Any], list[tuple[str, t.Any]]] = defaultdict(list)
    for row in by_kind["billed_in"]:
        billed_in[(row["bot_id"], row["other"])].append((_time(row["t1"]), row["id"]))
    for row in by_kind["finding"]:
        data.findings.append(_finding(row, ()))
    for row in by_kind["over"]:
        ids = tuple(i for _, i in sorted(billed_in[(row["bot_id"], row["id"])]))
        data.findings.append(_finding(row, ids))
    data.findings.sort(key=lambda f: (f.day, f.name, f.rule == "over_counted", f.id))
    data.daily = sorted(
        (
            {
                "bot_id": row["bot_id"],
                "name": row["name"] or row["bot_id"],
                "day": _day(row["period"]),
                "sessions": _int(row["n1"]) or 0,
                "flagged": _int(row["n2"]) or 0,
                "excess": _int(row["n3"]) or 0,
                "over_counted": _int(row["n4"]) or 0,
                "billed_amount": _money(row["a1"]),
                "flagged_amount": _money(row["a2"]),
                "excess_amount": _money(row["a3"]),
            }
            for row in by_kind["daily"]
        ),
        key=lambda r: (r["day"], r["name"]),
    )
    return data


def _finding(row: Row, ids: tuple[str, ...]) -> Finding:
    name = row["name"] or row["bot_id"]
    over = row["kind"] == "over"
    detail = row["detail"] or ""
    if over:
        seconds = _int(row["n1"]) or 0
        detail = (
            f"Conversation session {row['id']} ({seconds // 60} min {seconds % 60} s of "
            f"activity) is billed as {row['n2']} billing sessions, at most {row['n3']} by the "
            f"15-minute rule: {row['n4']} in excess ({', '.join(ids)})."
        )
    return Finding(
        bot_id=row["bot_id"],
        name=name,
        day=_day(row["period"]) or date.min,
        rule="over_counted" if over else row["unit"],
        id=row["id"],
        started=_time(row["t1"]),
        ended=_time(row["t2"]),
        detail=detail,
        ids=ids,
        other_id=row["other"] or "",
        excess=_int(row["n4"]) or 0 if over else 0,
        amount=_money(row["a1"]) if over else None,
    )

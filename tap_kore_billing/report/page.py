"""The page and the CSV beside it: the report's data (model.py) and charts (charts.py) written
as one self-contained HTML file (Jinja2; inline SVG and CSS, no script, no font, nothing
fetched) and one CSV of the mismatches and findings, the rows to quote to Kore.ai support."""

from __future__ import annotations

import csv
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
from markupsafe import Markup

from tap_kore_billing.report import charts
from tap_kore_billing.report.model import ReportData
from tap_kore_billing.report.verdict import difference_text

TEMPLATES = Path(__file__).parent / "templates"
CSV_COLUMNS = (
    "kind", "app_name", "app_id", "day", "unit_or_rule", "found", "billed", "difference",
    "billing_session_id", "started_utc", "ended_utc", "other_ids", "detail",
)  # fmt: skip


@dataclass(frozen=True)
class Written:
    page: Path
    csv: Path
    seconds: float
    size: int


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["unit"] = lambda text: str(text).replace("_", " ")
    env.filters["difference"] = difference_text
    env.filters["money"] = lambda value: "" if value is None else f"{value:,.3f}"
    env.filters["stamp"] = _stamp
    return env


def _stamp(value: object) -> Markup:
    """A UTC date over its time ('2026-09-14 09:57:21'): a narrow column, no broken date."""
    parts = str(value or "").split(" ")
    return Markup("<br>").join(Markup('<span class="stamp">{}</span>').format(p) for p in parts)


def _svg(text: str) -> str:
    """The SVG document inline in HTML: without its XML declaration."""
    return text[text.index("<svg") :] if "<svg" in text else text


def page_context(data: ReportData) -> dict[str, t.Any]:
    apps = []
    for bot_id, name in data.app_names():
        checks = charts.app_checks(data, bot_id)
        apps.append(
            {
                "bot_id": bot_id,
                "name": name,
                "chart": _svg(charts.reconciliation_chart(checks, data.disputed_days(bot_id))),
                "mismatches": [c for c in data.mismatches if c.bot_id == bot_id],
                "findings": charts.findings_of(data, bot_id),
                "open": sum(1 for c in checks if c.status == "open"),
                "matched": sum(1 for c in checks if c.status == "match"),
            }
        )
    families = []
    for family in sorted({(c.name, c.bot_id) for c in data.families}):
        checks = charts.family_checks(data, family[1])
        members = data.links.get(family[1], [])
        if not members:
            continue  # an app nothing routes to is its own family: its section says it all
        families.append(
            {
                "name": family[0],
                "bot_id": family[1],
                "members": sorted(members),
                "complete": all(c.complete for c in checks),
                "mismatches": sorted(
                    (c for c in checks if c.status == "mismatch"), key=lambda c: (c.day, c.unit)
                ),
                "chart": _svg(charts.reconciliation_chart(checks)),  # no audit marks: per app only
            }
        )
    disputed = sum((r["flagged_amount"] or 0) + (r["excess_amount"] or 0) for r in data.daily)
    billed = sum((r["billed_amount"] or 0) for r in data.daily)
    return {
        "verdict": data.verdict(),
        "audit": data.audit(),
        "apps": apps,
        "families": families,
        "mismatches": data.mismatches,
        "findings": data.findings,
        "finding_groups": _by_app(data),
        "audit_chart": _svg(charts.audit_chart(data)) if data.findings else "",
        "priced": data.priced,
        "billed_amount": billed,
        "disputed_amount": disputed,
        "ids": data.ids_to_quote(),
        "source": data.source,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _by_app(data: ReportData) -> list[dict[str, t.Any]]:
    """The findings under each app's name and ID, by name (each app's in their own order)."""
    apps = sorted({(f.name, f.bot_id) for f in data.findings})
    return [
        {
            "name": name,
            "bot_id": bot_id,
            "findings": [f for f in data.findings if f.bot_id == bot_id],
        }
        for name, bot_id in apps
    ]


def write_report(data: ReportData, page: Path) -> Written:
    """The page at `page` and the CSV beside it (`<stem>.csv`)."""
    started = time.monotonic()
    html = _environment().get_template("report.html.j2").render(**page_context(data))
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(html, encoding="utf-8")
    rows = page.with_suffix(".csv")
    write_csv(data, rows)
    return Written(page, rows, time.monotonic() - started, page.stat().st_size)


def write_csv(data: ReportData, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for c in data.mismatches:
            writer.writerow(
                ["mismatch", c.name, c.bot_id, c.day.isoformat(), c.unit, c.found,
                 "" if c.billed is None else c.billed, c.difference, "", "", "", "",
                 difference_text(c.difference)]
            )  # fmt: skip
        for f in data.findings:
            writer.writerow(
                ["finding", f.name, f.bot_id, f.day.isoformat(), f.rule, "", "", "",
                 " ".join(f.ids) if f.ids else f.id, f.started, f.ended,
                 f"conversation {f.id}" if f.ids else f.other_id, f.detail]
            )  # fmt: skip

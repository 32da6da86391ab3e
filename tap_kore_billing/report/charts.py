"""The page's charts: Vega-Lite specifications built with altair and rendered to SVG in Python
by vl-convert, so the page carries the drawing itself and no script. Each function returns one
SVG document as text."""

from __future__ import annotations

import typing as t
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date

import altair as alt
import vl_convert

from tap_kore_billing.report.model import Check, Finding, ReportData

UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")
FOUND, BILLED = "found (detail rows)", "billed (usage summary)"
MISMATCH, DISPUTED = "mismatch", "audit finding"
SERIES_COLORS = alt.Scale(domain=[FOUND, BILLED], range=["#1f5fa8", "#e08a00"])
MARK_COLORS = alt.Scale(domain=[MISMATCH, DISPUTED], range=["#c0182b", "#7b3fb0"])
RULE_COLORS = alt.Scale(
    domain=[
        "longer_than_15_minutes",
        "overlaps_another_session",
        "outside_its_conversation",
        "over_counted",
    ],
    range=["#c0182b", "#e08a00", "#1f5fa8", "#7b3fb0"],
)
WIDTH = 760  # fits a laptop's page column and an A4 page in portrait
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"  # local fonts only: nothing is fetched


def render(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document (vl-convert: no browser, no network)."""
    spec = chart.to_dict()
    svg = vl_convert.vegalite_to_svg(spec)
    return str(svg)


def _config(chart: t.Any) -> t.Any:
    return chart.configure(font=FONT).configure_view(stroke="#ccc")


def _day(value: date) -> str:
    return value.isoformat()


def reconciliation_chart(checks: Sequence[Check], marked: Iterable[date] = ()) -> str:
    """Sessions found and billed per day, one panel per billing unit; a red rule on each day
    that differs (mismatch) and a purple one on each day with an audit finding (`marked`)."""
    rows: list[dict[str, t.Any]] = []
    units = [u for u in UNITS if any(c.unit == u for c in checks)] or list(UNITS)
    units += sorted({c.unit for c in checks} - set(units))
    for check in checks:
        if check.granularity != "day":
            continue
        day = _day(check.day)
        rows.append({"layer": "count", "day": day, "unit": check.unit, "series": FOUND,
                     "count": check.found})  # fmt: skip
        if check.billed is not None:
            rows.append({"layer": "count", "day": day, "unit": check.unit, "series": BILLED,
                         "count": check.billed})  # fmt: skip
        if check.status == "mismatch":
            rows.append({"layer": "mark", "day": day, "unit": check.unit, "what": MISMATCH,
                         "note": f"{check.difference:+d} found - billed"})  # fmt: skip
    for marked_day in sorted(set(marked)):
        rows += [
            {"layer": "mark", "day": _day(marked_day), "unit": unit, "what": DISPUTED,
             "note": "a billing session breaks the rule"}
            for unit in units
        ]  # fmt: skip
    x = alt.X("day:T", timeUnit="utcyearmonthdate", title=None, axis=alt.Axis(format="%d %b"))
    lines = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "count")
        .mark_line(interpolate="step-after", strokeWidth=1.5)
        .encode(
            x=x,
            y=alt.Y("count:Q", title="billing sessions", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("series:N", scale=SERIES_COLORS, title=None),
            strokeDash=alt.StrokeDash("series:N", title=None, legend=None),
            strokeWidth=alt.StrokeWidth(
                "series:N", scale=alt.Scale(domain=[FOUND, BILLED], range=[3.5, 1.5]), legend=None
            ),
        )
    )
    rules = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "mark")
        .mark_rule(strokeWidth=2, opacity=0.8)
        .encode(x=x, stroke=alt.Stroke("what:N", scale=MARK_COLORS, title=None), tooltip=["note:N"])
    )
    layered = alt.layer(lines, rules, data=alt.Data(values=rows)).properties(width=WIDTH, height=70)
    facet = layered.facet(
        row=alt.Row("unit:N", sort=units, title=None, header=alt.Header(labelAngle=0,
                    labelAlign="left", labelFontWeight="bold", labelFontSize=12)),
    ).resolve_scale(y="independent")  # fmt: skip
    return render(_config(facet))


def audit_chart(data: ReportData) -> str:
    """The audit's findings per day by rule; when prices are set, what they cost per day."""
    counts = Counter((_day(f.day), f.rule, f.name) for f in data.findings)
    rows = [
        {"day": day, "rule": rule, "app": app, "findings": n}
        for (day, rule, app), n in sorted(counts.items())
    ]
    x = alt.X("day:T", timeUnit="utcyearmonthdate", title=None, axis=alt.Axis(format="%d %b"))
    days = [_day(c.day) for c in data.checks if c.granularity == "day"]
    domain = [min(days), max(days)] if days else None
    if domain:
        x = alt.X("day:T", timeUnit="utcyearmonthdate", title=None,
                  axis=alt.Axis(format="%d %b"), scale=alt.Scale(domain=domain))  # fmt: skip
    found = (
        alt.Chart(
            alt.Data(values=rows), title="Findings per day (billing sessions and conversations)"
        )
        .mark_bar(width=6)
        .encode(
            x=x,
            y=alt.Y("sum(findings):Q", title="findings", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("rule:N", scale=RULE_COLORS, title=None),
            tooltip=["app:N", "rule:N", "findings:Q"],
        )
        .properties(width=WIDTH, height=110)
    )
    if not data.priced:
        return render(_config(found))
    cost_rows = [
        {
            "day": _day(r["day"]),
            "app": r["name"],
            "cost": float((r["flagged_amount"] or 0) + (r["excess_amount"] or 0)),
        }
        for r in data.daily
        if (r["flagged_amount"] or 0) + (r["excess_amount"] or 0)
    ]
    cost = (
        alt.Chart(alt.Data(values=cost_rows), title="What the findings cost per day")
        .mark_bar(width=6)
        .encode(
            x=x,
            y=alt.Y("sum(cost):Q", title="cost"),
            color=alt.Color("app:N", title=None),
            tooltip=["app:N", "cost:Q"],
        )
        .properties(width=WIDTH, height=110)
    )
    return render(_config(alt.vconcat(found, cost).resolve_scale(color="independent")))


def family_checks(data: ReportData, family: str) -> list[Check]:
    return [c for c in data.families if c.bot_id == family]


def app_checks(data: ReportData, bot_id: str) -> list[Check]:
    return [c for c in data.checks if c.bot_id == bot_id]


def findings_of(data: ReportData, bot_id: str) -> list[Finding]:
    return [f for f in data.findings if f.bot_id == bot_id]

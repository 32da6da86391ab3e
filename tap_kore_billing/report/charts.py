"""The page's charts: Vega-Lite specifications built with altair and rendered to SVG in Python
by vl-convert, so the page carries the drawing itself and no script. Each function returns one
SVG document as text."""

from __future__ import annotations

import typing as t
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import altair as alt
import vl_convert

from tap_kore_billing.report.model import Check, Finding, ReportData

UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")
FOUND, BILLED = "found (detail rows)", "billed (usage summary)"
MISMATCH, DISPUTED = "mismatch (found and billed part)", "audit finding"
# The per-app panels: found a light bar per day, billed a thin dark step line over it, a
# mismatch a thick red stroke across the gap on a shaded day, an audit finding a dashed rule.
# Fill, width and dash tell them apart, not colour alone: they read in greyscale print too.
FOUND_FILL = "#9dc3ea"
STROKE = {BILLED: ("#a34d00", 1.5, [1, 0]), MISMATCH: ("#c0182b", 4, [1, 0]),
          DISPUTED: ("#7b3fb0", 1.5, [4, 3])}  # colour, width, dash  # fmt: skip
STROKE_CHANNELS = (
    ("stroke", alt.Stroke),
    ("strokeWidth", alt.StrokeWidth),
    ("strokeDash", alt.StrokeDash),
)
MISMATCH_SHADE = "#f7cdd2"
LEGEND = alt.Legend(orient="top", direction="horizontal", symbolSize=300, labelFontSize=11,
                    labelLimit=300, title=None)  # fmt: skip
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
PANEL_WIDTH = 860  # the per-app panels: no legend beside them, so the column's full width
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


def reconciliation_chart(checks: Sequence[Check], marked: Iterable[date] | None = None) -> str:
    """Sessions found and billed per day, one panel per billing unit: found a light bar, billed
    a thin step line over it (where they agree the line caps the bar). A day where they part is
    shaded, a thick red stroke spans the gap and a red label gives the day and both counts. With
    `marked` (an app's audited days), a dashed purple rule marks each day with a finding."""
    units = [u for u in UNITS if any(c.unit == u for c in checks)] or list(UNITS)
    units += sorted({c.unit for c in checks} - set(units))
    rows = _series_rows([c for c in checks if c.granularity == "day"], units)
    rows += [
        {"layer": "rule", "mid": _at(day, 12), "unit": unit, "series": DISPUTED,
         "note": f"{day:%d %b}: a billing session breaks the rule"}
        for day in sorted(set(marked or ())) for unit in units
    ]  # fmt: skip
    time, axis = alt.Scale(type="utc"), alt.Axis(format="%d %b", labelFlush=False)
    x, x2 = alt.X("start:T", title=None, scale=time, axis=axis), alt.X2("end:T")
    mid = alt.X("mid:T", title=None, scale=time, axis=axis)
    y = alt.Y("count:Q", title=None, axis=alt.Axis(tickMinStep=1, format="d"))
    shown = [BILLED, MISMATCH] + ([DISPUTED] if marked is not None else [])
    strokes = {  # three channels on one field: one legend
        name: channel(
            "series:N",
            legend=LEGEND,
            scale=alt.Scale(domain=shown, range=[STROKE[s][i] for s in shown]),
        )
        for i, (name, channel) in enumerate(STROKE_CHANNELS)
    }

    def only(layer: str) -> alt.Chart:
        return alt.Chart().transform_filter(alt.datum.layer == layer)

    layers = [
        only("gap").mark_rect(color=MISMATCH_SHADE, aria=False).encode(x=x, x2=x2),
        only("room").mark_point(opacity=0, aria=False).encode(x=x, y=y),
        only("found").mark_rect(aria=False).encode(
            x=x, x2=x2, y=y, y2=alt.datum(0),
            fill=alt.Fill("series:N", scale=alt.Scale(domain=[FOUND], range=[FOUND_FILL]),
                          legend=LEGEND)),
        only("rule").mark_rule().encode(x=mid, description="note:N", **strokes),
        only("billed").mark_line(interpolate="step-after", aria=False).encode(x=x, y=y, **strokes),
        only("gap").mark_rule().encode(x=mid, y="found:Q", y2="billed:Q", description="note:N",
                                       **strokes),
        *[_label(only("gap"), mid, side, halo) for side in ("left", "right") for halo in (1, 0)],
    ]  # fmt: skip
    panel = alt.layer(*layers, data=alt.Data(values=rows)).properties(width=PANEL_WIDTH, height=64)
    facet = panel.facet(
        row=alt.Row("unit:N", sort=units, title=None, header=alt.Header(
            labelOrient="top", labelAnchor="start", labelAngle=0, labelAlign="left",
            labelFontWeight="bold", labelFontSize=12, labelPadding=2,
            labelExpr="replace(datum.value, /_/g, ' ')")),
        spacing=10,
    ).resolve_scale(y="independent")  # fmt: skip
    return render(_config(facet))


def _series_rows(days: Sequence[Check], units: Sequence[str]) -> list[dict[str, t.Any]]:
    """The rows of the panels: found bars, the billed line's points, and per mismatch a gap
    (its shade, stroke and label) and an unseen point that leaves its label room on top."""
    rows: list[dict[str, t.Any]] = [
        {"layer": "found", "start": _at(c.day, 3), "end": _at(c.day, 21), "unit": c.unit,
         "series": FOUND, "count": c.found}  # narrower than its day: the line shows past it
        for c in days
    ]  # fmt: skip
    billed = [c for c in days if c.billed is not None]
    ends = {c.unit: c for c in sorted(billed, key=lambda c: c.day)}  # each unit's last day
    rows += [
        {"layer": "billed", "start": _at(day), "unit": c.unit, "series": BILLED, "count": c.billed}
        for c, day in [(c, c.day) for c in billed]
        + [(c, c.day + timedelta(days=1)) for c in ends.values()]  # the last step's end
    ]  # fmt: skip
    if not days:
        return rows
    first, span = min(c.day for c in days), max(c.day for c in days) - min(c.day for c in days)
    tops = Counter[str]()
    for c in days:
        tops[c.unit] = max(tops[c.unit], c.found, c.billed or 0)
    for c in (c for c in days if c.status == "mismatch"):
        rows += [
            {"layer": "gap", "start": _at(c.day), "end": _at(c.day, 24), "mid": _at(c.day, 12),
             "unit": c.unit, "series": MISMATCH, "found": c.found, "billed": c.billed or 0,
             "note": f"{c.day:%d %b}: {c.found} found, {c.billed or 0} billed",
             "side": "right" if (c.day - first) * 3 > span * 2 else "left"},
            {"layer": "room", "start": _at(c.day), "unit": c.unit, "count": tops[c.unit] * 1.4},
        ]  # fmt: skip
    return rows


def _label(chart: alt.Chart, x: alt.X, side: str, halo: int) -> alt.Chart:
    """A mismatch's day and counts in red at the top of its panel, beside the day (left of it
    in the panel's last third); drawn twice, first as a white halo."""
    right = side == "right"
    text = chart.transform_filter(alt.datum.side == side).mark_text(
        align="right" if right else "left", baseline="top", dx=-6 if right else 6, dy=1,
        fontSize=11, fontWeight="bold", color="#fff" if halo else STROKE[MISMATCH][0],
        stroke="#fff" if halo else None, strokeWidth=4 if halo else 0, aria=not halo,
    )  # fmt: skip
    return text.encode(x=x, y=alt.value(0), text="note:N")


def _at(day: date, hour: float = 0) -> str:
    """An instant of a UTC day, as Vega-Lite reads it (ISO 8601 with Z)."""
    moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=hour)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
            y=alt.Y("sum(findings):Q", title="findings", axis=_count_axis(data.findings)),
            color=alt.Color(
                "rule:N",
                scale=RULE_COLORS,
                title=None,
                legend=alt.Legend(labelExpr="replace(datum.label, /_/g, ' ')", labelLimit=240),
            ),
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


def _count_axis(findings: Sequence[Finding]) -> alt.Axis:
    """Whole numbers only: a day's few findings would otherwise get ticks at 0.5."""
    top = max(Counter(f.day for f in findings).values(), default=1)
    values = list(range(top + 1)) if top <= 5 else alt.Undefined
    return alt.Axis(tickMinStep=1, format="d", values=values)


def family_checks(data: ReportData, family: str) -> list[Check]:
    return [c for c in data.families if c.bot_id == family]


def app_checks(data: ReportData, bot_id: str) -> list[Check]:
    return [c for c in data.checks if c.bot_id == bot_id]


def findings_of(data: ReportData, bot_id: str) -> list[Finding]:
    return [f for f in data.findings if f.bot_id == bot_id]

"""`dbt show --log-format json` as dbt prints it: the rows come from its ShowNode event, and an
error is told by its first useful line, not dbt's heading or a traceback."""

from __future__ import annotations

import json

from tap_kore_billing.report.dbt_show import shown_rows


def event(name: str, level: str = "info", msg: str = "", data: dict | None = None) -> str:
    return json.dumps({"info": {"name": name, "level": level, "msg": msg}, "data": data or {}})


def test_the_rows_of_the_show_event_with_keys_lower_cased():
    preview = json.dumps([{"BOT_ID": "st-1", "Day": "2026-11-21"}, {"BOT_ID": "st-2", "Day": None}])
    stdout = "\n".join(
        [
            "not json: Meltano's own line",
            event("MainReportVersion", msg="Running with dbt=1.11.6"),
            event("ShowNode", data={"preview": preview}),
        ]
    )
    rows, errors = shown_rows(stdout)
    assert rows == [{"bot_id": "st-1", "day": "2026-11-21"}, {"bot_id": "st-2", "day": None}]
    assert errors == []


def test_no_show_event_is_no_rows_and_an_error_says_its_useful_line():
    message = (
        "Compilation Error in model kore_billing__reconciliation\n"
        "  Var 'kore_billing_currency' is 'usd': three capital letters, e.g. USD\n"
        "Traceback (most recent call last):\n"
    )
    rows, errors = shown_rows(event("RunResultError", level="error", msg=message))
    assert rows is None
    assert errors == ["Var 'kore_billing_currency' is 'usd': three capital letters, e.g. USD"]


def test_an_empty_result_is_rows_not_none():
    rows, _ = shown_rows(event("ShowNode", data={"preview": "[]"}))
    assert rows == []

"""What `dbt show --log-format json` printed: the rows of its ShowNode event and the first useful
line of each error event. Read by kore-billing-report and by the code location's findings, which
both ask dbt (through Meltano's dbt utility) for a query's rows."""

from __future__ import annotations

import json
import re
import typing as t

# dbt's heading line of an error ("Compilation Error", "Runtime Error in model x"): it says less
# than the line after it.
HEADING = re.compile(r"^\w+ Error( in .*)?$")


def shown_rows(stdout: str) -> tuple[list[dict[str, t.Any]] | None, list[str]]:
    """The rows of the ShowNode event, keys lower-cased (Snowflake folds them up), or None when
    dbt showed none; and the messages of its error events."""
    rows, errors = None, []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        info = event.get("info", {}) if isinstance(event, dict) else {}
        if info.get("level") == "error" and info.get("msg"):
            errors.append(first_line(str(info["msg"])))
        if info.get("name") == "ShowNode":
            preview = json.loads(event["data"]["preview"])
            rows = [{key.lower(): value for key, value in row.items()} for row in preview]
    return rows, errors


def first_line(message: str) -> str:
    """dbt's error message without its heading or the traceback it may carry."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [
        line
        for line in lines
        if not line.startswith(("Encountered an error", "Traceback", "File "))
        and not HEADING.match(line)
    ]
    return (useful or lines or [message])[0]

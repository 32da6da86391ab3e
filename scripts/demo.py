"""`make demo`: the whole pipeline on the local emulator, then the invoice check in words.

Starts kore-billing-sandbox on 127.0.0.1:8765 (or DEMO_PORT): a demo account of three apps
whose history begins on DEMO_START, where Front Desk routes to Claims Bot and Billing Help, and
whose usage summary bills Claims Bot three more conversations than it had on INJECTED_DAY, and
where AUDIT_CASES plant billing sessions that each break one billing rule (fixed IDs). Runs
`meltano --environment=sandbox run tap-kore-billing target-duckdb`, then `meltano invoke
dbt-duckdb build` with the demo's prices (DEMO_PRICES), stops the emulator and prints the
verdict first, then each app and each routing family, the audit, and the FOCUS export it writes
(scripts/focus_export.py). The emulator's sessions keep their IDs and times whenever it starts,
and the injected day is a date, so the verdict is the same on every run, today or next week; a
second run is incremental (Meltano keeps the state). DEMO_OUTPUT names another folder than
output/ for the DuckDB file and the export.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb

from tap_kore_billing.orchestration.local_snowflake import (
    LocalSnowflakeError,
    free_port,
    local_snowflake,
)
from tap_kore_billing.orchestration.meltano_process import MeltanoRunFailedError, install_missing
from tap_kore_billing.report.model import ReportData, build
from tap_kore_billing.report.page import write_report
from tap_kore_billing.report.verdict import audit_line, day_text, mismatch_text, verdict_line
from tap_kore_billing.report.warehouse import Fetched, ReportError, fetch_dbt, fetch_url
from tap_kore_billing.sandbox.demo_account import (
    ARGUMENTS,
    AUDIT_CASES,
    DEMO_PRICES,
    DEMO_START,
    INJECTED_DAY,
)

# The README's and the FOCUS tests read these here.
__all__ = [
    "AUDIT_CASES",
    "DEMO_PRICES",
    "DEMO_START",
    "INJECTED_DAY",
    "audit_line",
    "mismatch_text",
    "verdict_line",
]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTPUT = Path(os.environ.get("DEMO_OUTPUT") or ROOT / "output").resolve()
DATABASE = OUTPUT / "kore_billing.duckdb"
FOCUS_EXPORT = OUTPUT / "focus"
SCHEMA = "kore_billing.kore_billing"
MARTS = "kore_billing.analytics"
# The sandbox environment in meltano.yml points at 8765; DEMO_PORT picks another.
PORT_SETTING = os.environ.get("DEMO_PORT") or "8765"
# WAREHOUSE (make demo WAREHOUSE=postgres): the loader's and dbt utility's suffix, and the
# Meltano environment (both point the tap at the emulator).
WAREHOUSES = {"duckdb": "duckdb", "postgres": "postgres", "snowflake": "snowflake"}
ENVIRONMENTS = {"duckdb": "sandbox", "postgres": "sandbox", "snowflake": "snowflake-local"}
# PostgreSQL on this machine (trust authentication); DEMO_PG_SCHEMA names the loader's schema,
# the models go to <it>_analytics.
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", "5432", os.environ.get("DEMO_PG_USER") or "postgres"
PG_DATABASE = os.environ.get("DEMO_PG_DATABASE") or "postgres"
PG_SCHEMA = os.environ.get("DEMO_PG_SCHEMA") or "kore_billing_demo"
UNITS = ("sessions", "conversations", "alert_notifications", "proactive_notifications")


def demo_port() -> int:
    port = int(PORT_SETTING) if PORT_SETTING.isdigit() else 0
    if not 1 <= port <= 65535:
        sys.exit(f"DEMO_PORT is {PORT_SETTING!r}, not a port number (1-65535)")
    return port


def start_emulator(port: int) -> tuple[subprocess.Popen[str], str]:
    emulator = subprocess.Popen(
        [str(BIN / "kore-billing-sandbox"), "--port", str(port), *ARGUMENTS],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = emulator.stdout.readline() if emulator.stdout else ""
    if not line:
        emulator.wait(timeout=10)
        sys.exit(
            f"the emulator did not start (is port {port} in use? DEMO_PORT=8790 make demo "
            "uses another)"
        )
    info = json.loads(line)
    print(
        f"emulator: {info['url']}, {info['visible_sessions']} sessions in {len(info['apps'])} apps"
    )
    return emulator, info["url"]


def shown(path: Path) -> str:
    """A path as the reader typed it: relative to the project when it is inside."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def warehouse_env(warehouse: str) -> dict[str, str]:
    """What the loader and dbt read for `warehouse`: DuckDB the demo's file; PostgreSQL
    127.0.0.1:5432 (trust), schemas of the demo's own; the local Snowflake a free port and its
    files under the demo's folder."""
    if warehouse == "duckdb":
        return {"TARGET_DUCKDB_FILEPATH": str(DATABASE)}  # dbt-duckdb's path follows it
    if warehouse == "postgres":
        return {
            "PGHOST": PG_HOST, "PGPORT": PG_PORT, "PGUSER": PG_USER, "PGDATABASE": PG_DATABASE,
            "PGPASSWORD": "unused-with-trust-auth",  # target-postgres wants one
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": PG_SCHEMA,
            "DBT_POSTGRES_HOST": PG_HOST, "DBT_POSTGRES_PORT": PG_PORT,
            "DBT_POSTGRES_USER": PG_USER, "DBT_POSTGRES_DBNAME": PG_DATABASE,
            "DBT_POSTGRES_PASSWORD": "unused-with-trust-auth",
            "DBT_POSTGRES_SCHEMA": f"{PG_SCHEMA}_analytics",
        }  # fmt: skip
    return {
        "TARGET_SNOWFLAKE_PORT": str(free_port()),
        "SNOWFLAKE_LOCAL_DIR": str(OUTPUT / "snowflake-local"),
    }


def run_pipeline(api_url: str, warehouse: str, env: dict[str, str]) -> float:
    """Extract and load, then dbt with the demo's prices (`meltano run` passes no dbt vars)."""
    started = time.monotonic()
    env = {**env, "TAP_KORE_BILLING_API_URL": api_url, "TAP_KORE_BILLING_START_DATE": DEMO_START}
    prices = json.dumps({"kore_billing_price_per_session": DEMO_PRICES})
    for step in (
        ["run", "tap-kore-billing", f"target-{WAREHOUSES[warehouse]}"],
        ["invoke", f"dbt-{WAREHOUSES[warehouse]}", "build", "--vars", prices],
    ):
        done = subprocess.run(
            [BIN / "meltano", f"--environment={ENVIRONMENTS[warehouse]}", *step],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print((done.stdout + done.stderr)[-3000:], file=sys.stderr)
            sys.exit(f"meltano {step[0]} failed with exit code {done.returncode}")
    return time.monotonic() - started


def read_models(warehouse: str, env: dict[str, str]) -> ReportData:
    """The models as the report reads them: DuckDB and PostgreSQL by URL, the local Snowflake
    through dbt-snowflake's profile (the pipeline's)."""
    fetched: Fetched
    if warehouse == "duckdb":
        fetched = fetch_url(f"duckdb:///{DATABASE}?schema=analytics")
    elif warehouse == "postgres":
        fetched = fetch_url(
            f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?schema={PG_SCHEMA}_analytics"
        )
    else:
        fetched = fetch_dbt("dbt-snowflake", ENVIRONMENTS[warehouse], ROOT, env)
    return build(fetched.rows, priced=fetched.priced, source=fetched.source)


def focus(db: duckdb.DuckDBPyConnection) -> None:
    """The FOCUS rows in two sums: BilledCost against sessions x price per type, and
    x_DisputedCost against the audit's excess sessions x the Conversations price."""
    rows = db.sql(
        'select "x_BillingSessionType", sum("ConsumedQuantity"), min("ListUnitPrice"), '  # noqa: S608
        'sum("BilledCost"), sum("x_ExcessSessions"), sum("x_DisputedCost"), '
        'min("BillingCurrency"), count(*) '
        f"from {MARTS}.kore_billing__focus group by 1 order by 1"
    ).fetchall()
    if not rows:
        print("\nFOCUS: no rows (no price in var kore_billing_price_per_session)")
        return
    currency = rows[0][6]
    billed = sum(row[3] for row in rows)
    parts = [
        f"{kind} {int(n):,} x {price.normalize():f} = {cost:,.3f}"
        for kind, n, price, cost, *_ in rows
    ]
    excess, disputed = sum(row[4] for row in rows), sum(row[5] for row in rows)
    print(
        f"\nFOCUS 1.2: {sum(row[7] for row in rows)} rows (app, day, type), BilledCost "
        f"{currency} {billed:,.3f} = sessions x price per type: {'; '.join(parts)}; "
        f"x_DisputedCost {currency} {disputed:,.3f} ({int(excess)} excess sessions)"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Rows as aligned text: numbers right, words left."""
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(r[i], int) for r in rows) and rows for i in range(len(headers))]
    for n, row in enumerate(cells):
        line = "  ".join(
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        )
        print("  " + line.rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def verdict(data: ReportData) -> None:
    """The verdict from the report's own reading of the models: the same on every warehouse."""
    print("\n" + data.verdict())
    print(
        f"(the demo injected one: Claims Bot, {day_text(date.fromisoformat(INJECTED_DAY))}, "
        "conversations, 3 more billed than found)"
    )


def per_app(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.sql(
        "select coalesce(app_name, bot_id) as app, "
        + ", ".join(f"sum(case when unit = '{u}' then detail_count end)::bigint" for u in UNITS)
        + ", sum(case when status = 'match' then 1 else 0 end)::bigint, "
        "sum(case when status = 'mismatch' then 1 else 0 end)::bigint, "
        "sum(case when status = 'open' then 1 else 0 end)::bigint "
        f"from {MARTS}.kore_billing__reconciliation "
        "where granularity = 'day' and bot_id <> 'ALL' group by 1 order by 1"
    ).fetchall()
    print("\nPer app, every day since the first session: the billing sessions found in the detail")
    print("extract, per unit of the invoice, and the checks (one per app, day and unit):")
    table(
        [
            "app",
            "sessions",
            "conversations",
            "alert notif.",
            "proactive notif.",
            "match",
            "mismatch",
            "open",
        ],
        [tuple(int(v) if isinstance(v, (int, float)) else v for v in row) for row in rows],
    )


def per_family(db: duckdb.DuckDBPyConnection) -> None:
    families = db.sql(
        f"select family_name, family_bot_id, max(apps)::bigint, "  # noqa: S608
        "sum(case when status = 'match' then 1 else 0 end)::bigint, "
        "sum(case when status = 'mismatch' then 1 else 0 end)::bigint, "
        "sum(case when status = 'open' then 1 else 0 end)::bigint, "
        "bool_and(complete) "
        f"from {MARTS}.kore_billing__family_reconciliation "
        "where granularity = 'day' group by 1, 2 order by 1"
    ).fetchall()
    members = dict(
        db.sql(
            f"select coalesce(p.app_name, l.parent_bot_id), "  # noqa: S608
            "string_agg(coalesce(l.linked_app_name, l.linked_bot_id), ', ' "
            "order by coalesce(l.linked_app_name, l.linked_bot_id)) "
            f"from {MARTS}.stg_kore_billing__app_links l "
            f"left join {MARTS}.stg_kore_billing__apps p on p.bot_id = l.parent_bot_id "
            "where l.link_state = 'published' group by 1"
        ).fetchall()
    )
    print("\nPer routing family (a Parent app and the apps it routes to, summed per day and")
    print("unit: a session billed to a linked app but found under its Parent nets out here):")
    table(
        ["family", "routes to", "match", "mismatch", "open", "complete"],
        [
            (
                name or bot,
                members.get(name or bot, "-"),
                match,
                mismatch,
                still_open,
                "yes" if complete else "NO: an app was not read",
            )
            for name, bot, _apps, match, mismatch, still_open, complete in families
        ],
    )


def audit(db: duckdb.DuckDBPyConnection) -> None:
    """The billing rule checked: a verdict line, then every finding with the IDs to quote."""
    sessions = db.sql(
        "select coalesce(app_name, bot_id), billing_day, finding, detail "  # noqa: S608
        f"from {MARTS}.kore_billing__session_audit order by 2, 1, billing_session_id"
    ).fetchall()
    conversations = db.sql(
        "select coalesce(a.app_name, a.bot_id), a.billing_day, a.conversation_session_id, "  # noqa: S608
        "a.conversation_seconds, a.billing_sessions, a.expected_at_most, a.excess_sessions, "
        "string_agg(s.billing_session_id, ', ' order by s.billing_session_started_at) "
        f"from {MARTS}.kore_billing__conversation_audit a "
        f"join {MARTS}.stg_kore_billing__billing_sessions s "
        "on s.bot_id = a.bot_id and s.conversation_session_id = a.conversation_session_id "
        "where a.status = 'over_counted' group by 1, 2, 3, 4, 5, 6, 7 order by 2, 1"
    ).fetchall()
    print("\n" + audit_line(sessions, conversations))
    for app, day, finding, detail in sessions:
        print(f"  {app}, {day_text(day)}, {finding.replace('_', ' ')}: {detail}")
    for app, day, conversation, seconds, billed, expected, excess, ids in conversations:
        print(
            f"  {app}, {day_text(day)}, over-counted conversation {conversation}: "
            f"{seconds // 60} min {seconds % 60} s of activity billed as {billed} sessions, at "
            f"most {expected} by the 15-minute rule ({excess} excess): {ids}"
        )
    if sessions or conversations:
        print("  Quote these IDs to Kore.ai support when disputing the invoice.")


def chosen_warehouse(argv: Sequence[str]) -> str:
    warehouse = (argv[0] if argv else "") or os.environ.get("WAREHOUSE") or "duckdb"
    if warehouse not in WAREHOUSES:
        sys.exit(f"WAREHOUSE={warehouse!r}: choose duckdb (the default), postgres or snowflake")
    return warehouse


def main(argv: Sequence[str] = ()) -> int:
    warehouse = chosen_warehouse(argv)
    plugins = [
        ("extractors", "tap-kore-billing"),
        ("loaders", f"target-{WAREHOUSES[warehouse]}"),
        ("utilities", f"dbt-{WAREHOUSES[warehouse]}"),
        *([("utilities", "fakesnow")] if warehouse == "snowflake" else []),
    ]
    try:
        install_missing(ROOT, os.environ, plugins)
    except MeltanoRunFailedError as exc:
        sys.exit(f"make demo: {exc}")
    port = demo_port()
    DATABASE.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **warehouse_env(warehouse)}
    with contextlib.ExitStack() as stack:
        if warehouse == "snowflake":
            try:
                server = stack.enter_context(local_snowflake(ROOT, env))
            except LocalSnowflakeError as exc:
                sys.exit(f"make demo: {exc}")
            print(f"local Snowflake: {server.info['url']}")
        emulator, api_url = start_emulator(port)
        try:
            seconds = run_pipeline(api_url, warehouse, env)
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
        print(
            f"pipeline: meltano run tap-kore-billing target-{WAREHOUSES[warehouse]}, meltano "
            f"invoke dbt-{WAREHOUSES[warehouse]} build with the demo's prices, {seconds:.0f} s"
        )
        try:
            data = read_models(warehouse, env)
        except ReportError as exc:
            sys.exit(f"make demo: the report cannot read the models: {exc}")
    written = write_report(data, OUTPUT / "report.html")
    if warehouse != "duckdb":
        print(f"models: {data.source}")
        verdict(data)
        print("\n" + data.audit())
    else:
        print(f"database: {shown(DATABASE)} (tables in {SCHEMA}, models in {MARTS})")
        with duckdb.connect(str(DATABASE), read_only=True) as db:
            verdict(data)
            per_app(db)
            per_family(db)
            audit(db)
            focus(db)
        focus_export()
    print(
        "\nmatch: the sessions found equal the usage summary's count; mismatch: they differ; "
        "open: today's periods, still being counted, checked once they end."
    )
    print(
        f"\nreport: {shown(written.page)} (open it in a browser; {written.size:,} bytes, "
        f"{written.seconds:.1f} s), its rows in {shown(written.csv)}"
    )
    return 0


def focus_export() -> None:
    exported = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "focus_export.py"),
            *("--database", str(DATABASE), "--out", str(FOCUS_EXPORT)),
        ],
        check=False,
    )
    if exported.returncode != 0:
        sys.exit("the FOCUS export failed")
    check = (
        "make focus-validate"
        if FOCUS_EXPORT == ROOT / "output" / "focus"
        else f"python3 scripts/focus_validate.py {shown(FOCUS_EXPORT)}/*"
    )
    print(
        f"(a FinOps tool ingests either file; `{check}` checks them with the FinOps "
        "Foundation's validator)"
    )


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except duckdb.IOException as exc:
        # Typically another run (a `meltano run ... target-duckdb`) holds the file's lock.
        sys.exit(f"cannot open {shown(DATABASE)}: {exc}")

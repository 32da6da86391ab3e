"""`make demo`: the whole pipeline on the local emulator, then the invoice reconciliation.

Starts kore-billing-sandbox on 127.0.0.1:8765 (or DEMO_PORT) with one injected discrepancy
(the usage summary bills app 2 for three more conversations than it had, ten days ago), runs
`meltano --environment=sandbox run tap-kore-billing target-duckdb dbt-duckdb:build`, stops the
emulator and prints sessions per app, month, type and channel, then the reconciliation: every
app-day and unit compared, and the mismatches listed. Run it again to see an incremental run:
Meltano keeps the state, so only the lookback is read again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATABASE = ROOT / "output" / "kore_billing.duckdb"
TABLE = "kore_billing.kore_billing.billing_sessions"
RECONCILIATION = "kore_billing.analytics.kore_billing__reconciliation"
# The discrepancy the demo asks the emulator for: app 2, ten days ago, +3 conversations billed.
INJECTED_DAY = (datetime.now(timezone.utc) - timedelta(days=10)).date().isoformat()
INJECTED = f"2:{INJECTED_DAY}:conversations:3"
WINDOW_LINE = re.compile(r"Partition .* window \d+/\d+ \S+: (\d+) rows")
# The sandbox environment in meltano.yml points at 8765; DEMO_PORT picks another.
PORT_SETTING = os.environ.get("DEMO_PORT") or "8765"
# The emulator's obviously fake secret, as in meltano.yml's sandbox environment.
SANDBOX_SECRET = "sandbox-secret-not-real-only-for-the-local-emulator"  # noqa: S105


def demo_port() -> int:
    port = int(PORT_SETTING) if PORT_SETTING.isdigit() else 0
    if not 1 <= port <= 65535:
        sys.exit(f"DEMO_PORT is {PORT_SETTING!r}, not a port number (1-65535)")
    return port


def start_emulator(port: int) -> tuple[subprocess.Popen[str], str]:
    emulator = subprocess.Popen(
        [
            str(BIN / "kore-billing-sandbox"),
            "--port",
            str(port),
            "--client-secret",
            SANDBOX_SECRET,
            "--summary-discrepancy",
            INJECTED,
        ],
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
    apps = len(info["bot_ids"])
    print(f"emulator: {info['url']}, {info['visible_sessions']} sessions in {apps} apps")
    return emulator, info["url"]


def row_count() -> int:
    if not DATABASE.exists():
        return 0
    with duckdb.connect(str(DATABASE), read_only=True) as db:
        exists = db.sql(
            "select count(*) from information_schema.tables where table_name = 'billing_sessions'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        result = db.sql(f"select count(*) from {TABLE}").fetchone()  # noqa: S608
        return int(result[0]) if result else 0


def run_pipeline(api_url: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [
            BIN / "meltano",
            "--environment=sandbox",
            "run",
            "tap-kore-billing",
            "target-duckdb",
            "dbt-duckdb:build",
        ],
        cwd=ROOT,
        env={**os.environ, "TAP_KORE_BILLING_API_URL": api_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        sys.exit(f"meltano run failed with exit code {done.returncode}")
    windows = [
        int(match.group(1))
        for line in (done.stdout + done.stderr).splitlines()
        if (match := WINDOW_LINE.search(line))
    ]
    count = len(windows)
    print(f"the tap read {count} window{'s' * (count != 1)} and emitted {sum(windows)} sessions")
    return time.monotonic() - started


def summary(before: int, seconds: float) -> None:
    with duckdb.connect(str(DATABASE), read_only=True) as db:
        total, distinct = db.sql(
            f"select count(*), count(distinct billingsessionid) from {TABLE}"  # noqa: S608
        ).fetchone() or (0, 0)
        print(f"\npipeline run: {seconds:.1f} s; rows before {before}, after {total}")
        print(f"database: {DATABASE}")
        print(f"table {TABLE}: {total} rows, {distinct} distinct billingSessionId")
        for title, query in (
            ("sessions per app", "select botid as app, count(*) as sessions from {t} group by 1"),
            (
                "sessions per month (by billingSessionEndDateTime, UTC)",
                "select strftime(billingsessionenddatetime, '%Y-%m') as month, "
                "count(*) as sessions from {t} group by 1",
            ),
            (
                "sessions per billingSessionType and channel",
                "select billingsessiontype as type, channel, count(*) as sessions from {t} "
                "group by 1, 2",
            ),
        ):
            print(f"\n{title}:")
            db.sql(query.format(t=TABLE) + " order by 1, 2").show()


def reconciliation() -> None:
    with duckdb.connect(str(DATABASE), read_only=True) as db:
        print("\nreconciliation (kore_billing__reconciliation: detail rows vs. the usage summary):")
        db.sql(
            "select granularity, unit, status, count(*) as periods, "  # noqa: S608
            "sum(detail_count) as detail, sum(summary_count) as summary "
            f"from {RECONCILIATION} group by 1, 2, 3 order by 1, 2, 3"
        ).show()
        print(f"mismatches (injected: app 2, {INJECTED_DAY}, conversations, +3 in the summary):")
        db.sql(
            "select bot_id as app, period_start::date as day, unit, detail_count as detail, "  # noqa: S608
            "summary_count as summary, difference "
            f"from {RECONCILIATION} where status = 'mismatch' order by period_start, bot_id, unit"
        ).show()


def main() -> int:
    installed = subprocess.run(
        [str(BIN / "meltano"), "install", "tap-kore-billing", "target-duckdb", "dbt-duckdb"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    if installed.returncode != 0:
        print(installed.stderr[-3000:], file=sys.stderr)
        sys.exit(f"meltano install failed with exit code {installed.returncode}")
    port = demo_port()
    DATABASE.parent.mkdir(exist_ok=True)
    before = row_count()
    emulator, api_url = start_emulator(port)
    try:
        seconds = run_pipeline(api_url)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    summary(before, seconds)
    reconciliation()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except duckdb.IOException as exc:
        # Typically another run (a `meltano run ... target-duckdb`) holds the file's lock.
        sys.exit(f"cannot open {DATABASE.relative_to(ROOT)}: {exc}")

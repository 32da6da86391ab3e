"""`make demo WAREHOUSE=postgres`: the demo's pipeline into PostgreSQL (127.0.0.1:5432, schemas
of this test's own), and its report read there by URL, with the same verdict as on DuckDB."""

from __future__ import annotations

import html
import subprocess
import uuid
from datetime import date, datetime, timezone

import psycopg
import pytest
from helpers import PG, ROOT, postgres_or_skip, run_demo

from tap_kore_billing.report.verdict import verdict_line
from tap_kore_billing.sandbox.demo_account import DEMO_START, INJECTED_DAY

pytestmark = pytest.mark.postgres


def expected_verdicts() -> set[str]:
    """The demo account's verdict today (and tomorrow, should the run cross midnight UTC)."""
    first = date.fromisoformat(DEMO_START[:10])
    today = datetime.now(timezone.utc).date()
    mismatch = [("Claims Bot", date.fromisoformat(INJECTED_DAY), "conversations", -3)]
    return {
        verdict_line(3, (last - first).days + 1, first, last, mismatch)
        for last in (today, date.fromordinal(today.toordinal() + 1))
    }


@pytest.fixture(scope="module")
def postgres_demo(tmp_path_factory):
    postgres_or_skip()
    work = tmp_path_factory.mktemp("demo-postgres")
    schema = f"kore_report_{uuid.uuid4().hex[:8]}"
    try:
        stdout = run_demo(
            work,
            "postgres",
            DEMO_PG_DATABASE=PG["dbname"],
            DEMO_PG_USER=PG["user"],
            DEMO_PG_SCHEMA=schema,
        )
        yield work / "output", stdout, schema
    finally:
        with psycopg.connect(**PG, autocommit=True) as conn:
            for name in (schema, f"{schema}_analytics", f"{schema}_analytics_dbt_test__audit"):
                conn.execute(f"drop schema if exists {name} cascade")


def test_the_postgres_demo_says_the_verdict_of_the_duckdb_demo_and_writes_the_report(
    postgres_demo,
):
    output, printed, schema = postgres_demo
    verdict = next(line for line in printed.splitlines() if line.startswith("VERDICT: "))
    assert verdict in expected_verdicts()
    assert f"models: PostgreSQL postgresql://{PG['user']}@{PG['host']}:5432/" in printed
    assert f"schema {schema}_analytics" in printed
    page = (output / "report.html").read_text()
    assert f'<p id="verdict" class="verdict">{html.escape(verdict)}</p>' in page
    rows = (output / "report.csv").read_text().splitlines()
    assert [r.split(",")[3:5] for r in rows if r.startswith("mismatch,")] == [
        [INJECTED_DAY, "conversations"]
    ]
    assert sum(r.startswith("finding,") for r in rows) == 4


def test_a_bad_warehouse_is_one_line_and_a_non_zero_exit():
    done = subprocess.run(
        ["make", "-s", "demo", "WAREHOUSE=oracle"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        "WAREHOUSE='oracle': choose duckdb (the default), postgres or snowflake"
    )
    assert "Traceback" not in done.stderr

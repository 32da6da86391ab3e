"""`kore-billing-report`: the page of the reconciliation and the audit, from any warehouse.

    kore-billing-report --url duckdb:///output/kore_billing.duckdb --out output/report.html
    kore-billing-report --url 'postgresql://user@host:5432/analytics?schema=analytics'
    kore-billing-report --dbt dbt-snowflake --environment prod

Prints the page's and the CSV's paths, the verdict line and the render time; any failure is one
line on stderr naming what failed, exit 1 (2 for a wrong command line)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tap_kore_billing.report.model import ReportData, build
from tap_kore_billing.report.warehouse import (
    DBT_UTILITIES,
    Fetched,
    ReportError,
    fetch_dbt,
    fetch_url,
)

URL_VARIABLE = "KORE_BILLING_REPORT_URL"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kore-billing-report",
        description=(
            "Write one self-contained HTML page (and a CSV of the mismatches and findings "
            "beside it) from the kore_billing dbt package's models."
        ),
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        help=(
            "the warehouse: duckdb:///path/file.duckdb (or the file's path) or "
            "postgresql://user@host:5432/database, each with ?schema= (default analytics); "
            f"default ${URL_VARIABLE}"
        ),
    )
    source.add_argument(
        "--dbt",
        choices=DBT_UTILITIES,
        help="read through Meltano's dbt utility and its profile (any warehouse, Snowflake too)",
    )
    p.add_argument("--environment", default="dev", help="the Meltano environment for --dbt")
    p.add_argument("--project", type=Path, help="the Meltano project for --dbt (default: here)")
    p.add_argument("--out", type=Path, default=Path("output/report.html"), help="the page to write")
    return p


def read(args: argparse.Namespace) -> ReportData:
    fetched: Fetched
    if args.dbt:
        fetched = fetch_dbt(args.dbt, args.environment, args.project)
    else:
        url = args.url or os.environ.get(URL_VARIABLE)
        if not url:
            raise ReportError(f"name the warehouse: --url, --dbt or ${URL_VARIABLE}")
        fetched = fetch_url(url)
    return build(fetched.rows, priced=fetched.priced, source=fetched.source)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        from tap_kore_billing.report.page import write_report  # noqa: PLC0415
    except ImportError as exc:
        sys.exit(
            f"kore-billing-report: {exc.name} is missing: pip install 'tap-kore-billing[report]'"
        )
    try:
        data = read(args)
        written = write_report(data, args.out)
    except ReportError as exc:
        sys.exit(f"kore-billing-report: {exc}")
    except OSError as exc:
        sys.exit(f"kore-billing-report: cannot write {args.out}: {exc.strerror or exc}")
    print(f"report: {written.page} ({written.size:,} bytes, {written.seconds:.1f} s)")
    print(f"rows: {written.csv} ({len(data.mismatches)} mismatches, {len(data.findings)} findings)")
    print(data.verdict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

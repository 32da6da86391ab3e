"""`make focus-export`: the FOCUS model (kore_billing__focus) of a DuckDB file as the files a
FinOps tool ingests, `kore_billing__focus.csv` and `kore_billing__focus.parquet`.

Both are the model's `select *`, ordered by day, app and type. The CSV writes date-times as FOCUS
spells them (`2026-09-01T00:00:00Z`) and decimals with their decimal places (a reader that infers
types must not take a quantity for an integer); the Parquet file keeps the types, its date-times
as UTC instants.

    python scripts/focus_export.py [--database output/kore_billing.duckdb] [--schema analytics]
                                   [--out output/focus]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
MODEL = "kore_billing__focus"
DATETIMES = (
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargePeriodEnd",
    "ChargePeriodStart",
)
ORDER = '"ChargePeriodStart", "ResourceId", "x_BillingSessionType"'


class ExportError(Exception):
    """What stops an export, in one line that says what to do."""


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export(database: Path, schema: str, out: Path) -> tuple[Path, Path, int]:
    """Writes the model's CSV and Parquet files into `out`; returns their paths and the rows."""
    if not database.is_file():
        raise ExportError(
            f"no DuckDB file at {database}: build the dbt project into it first (`make demo`, "
            "or `meltano run tap-kore-billing target-duckdb dbt-duckdb:build`)"
        )
    try:
        db = duckdb.connect(str(database), read_only=True)
    except duckdb.IOException as exc:  # typically another process holds the file's lock
        raise ExportError(f"cannot open {database}: {exc}") from exc
    with db:
        found = db.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?",
            [schema, MODEL],
        ).fetchone()
        if not found or not found[0]:
            raise ExportError(
                f"{database} has no {schema}.{MODEL}: run `dbt build` of the kore_billing "
                "package (dbt-duckdb:build) with var kore_billing_price_per_session, or name the "
                "models' schema with --schema"
            )
        relation = f'"{schema}"."{MODEL}"'
        (rows,) = db.execute(f"select count(*) from {relation}").fetchone() or (0,)  # noqa: S608
        out.mkdir(parents=True, exist_ok=True)
        csv_path, parquet_path = out / f"{MODEL}.csv", out / f"{MODEL}.parquet"
        db.execute("set TimeZone = 'UTC'")  # the naive UTC timestamps become UTC instants
        db.execute(
            f"copy (select * from {relation} order by {ORDER}) to {quoted(str(csv_path))} "  # noqa: S608
            "(header, delimiter ',', timestampformat '%Y-%m-%dT%H:%M:%SZ')"
        )
        instants = ", ".join(f'cast("{name}" as timestamptz) as "{name}"' for name in DATETIMES)
        db.execute(
            f"copy (select * replace ({instants}) from {relation} order by {ORDER}) "  # noqa: S608
            f"to {quoted(str(parquet_path))} (format parquet)"
        )
    return csv_path, parquet_path, int(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        type=Path,
        default=ROOT / "output" / "kore_billing.duckdb",
        help="the DuckDB file the dbt project was built into (default: the demo's)",
    )
    parser.add_argument(
        "--schema", default="analytics", help="the schema of the models (default: analytics)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "output" / "focus",
        help="the folder to write the files into (default: output/focus)",
    )
    args = parser.parse_args(argv)
    try:
        *paths, rows = export(args.database, args.schema, args.out.resolve())
    except ExportError as exc:
        print(f"focus-export: {exc}", file=sys.stderr)
        return 1
    except (OSError, duckdb.Error) as exc:  # --out not a writable folder, a file in the way
        print(f"focus-export: cannot write into {args.out}: {exc}", file=sys.stderr)
        return 1
    shown = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths]
    print(f"FOCUS 1.2 export, {rows} rows: {shown[0]} and {shown[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""kore-billing-report's bad input: one line naming what is wrong, exit 1, no traceback, and no
page written. And the verdict's words on rows without a mismatch."""

from __future__ import annotations

import duckdb
import pytest

from tap_kore_billing.report.cli import main
from tap_kore_billing.report.model import build
from tap_kore_billing.report.query import COLUMNS


def said(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code not in (0, None)
    message = str(stopped.value.code)
    assert "\n" not in message
    assert "Traceback" not in message + capsys.readouterr().err
    return message


def test_a_url_of_another_kind_is_named(tmp_path, capsys):
    message = said(capsys, ["--url", "mysql://db/x", "--out", str(tmp_path / "r.html")])
    assert message.startswith("kore-billing-report: mysql://db/x: not a warehouse URL")
    assert not (tmp_path / "r.html").exists()


def test_snowflake_by_url_points_to_the_dbt_profile(tmp_path, capsys):
    message = said(capsys, ["--url", "snowflake://u:secret@acct/db", "--out", str(tmp_path / "r")])
    assert "--dbt dbt-snowflake" in message
    assert "secret" not in message


def test_a_missing_duckdb_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nothing.duckdb"
    message = said(capsys, ["--url", f"duckdb:///{missing}", "--out", str(tmp_path / "r.html")])
    assert f"no DuckDB file at {missing}" in message


def test_a_schema_without_the_models_names_each_missing_one(tmp_path, capsys):
    database = tmp_path / "empty.duckdb"
    with duckdb.connect(str(database)) as db:
        db.execute("create schema analytics")
        db.execute("create table analytics.kore_billing__reconciliation (x int)")
    message = said(capsys, ["--url", str(database), "--out", str(tmp_path / "r.html")])
    assert "schema analytics lacks the package's models kore_billing__family_reconciliation," in (
        message
    )
    assert "kore_billing__reconciliation," not in message


def test_an_unreachable_postgres_is_one_line(tmp_path, capsys):
    url = "postgresql://someone:pw@127.0.0.1:1/db"
    message = said(capsys, ["--url", url, "--out", str(tmp_path / "r.html")])
    assert message.startswith("kore-billing-report: postgresql://someone:***@127.0.0.1:1/db: ")
    assert "pw@" not in message


def test_no_source_named(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KORE_BILLING_REPORT_URL", raising=False)
    assert "name the warehouse" in said(capsys, ["--out", str(tmp_path / "r.html")])


def test_rows_without_a_mismatch_say_every_day_matches():
    def row(**values: str | None) -> tuple:
        return tuple(values.get(name) for name in COLUMNS)

    rows = [
        row(kind="recon", bot_id="st-1", name="A", period="2026-09-01 00:00:00",
            unit="conversations", n1="2", n2="2", n3="0", status="match", other="day"),
        row(kind="recon", bot_id="st-1", name="A", period="2026-09-02 00:00:00.000",
            unit="conversations", n1="1", n2=None, n3="1", status="open", other="day"),
    ]  # fmt: skip
    data = build(rows, priced=False, source="test")
    assert data.verdict() == (
        "VERDICT: 1 apps, 2 days (1 Sep - 2 Sep, the last still open): every closed app-day "
        "matches the invoice's usage summary"
    )
    assert data.audit() == "AUDIT: every billing session follows Kore.ai's 15-minute rule"

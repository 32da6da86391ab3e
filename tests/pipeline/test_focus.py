"""The FOCUS model (kore_billing__focus) over a random account (tests/focus_data.py), built
through Meltano on DuckDB as users build it, then on PostgreSQL: its columns as FOCUS spells
them, each row's values, the rows and quantities the data gives, the costs as quantity x price,
and the export (scripts/focus_export.py) passed by the FinOps Foundation's validator
(scripts/focus_validate.py). `KORE_FOCUS_SEED=<seed>` replays a draw."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from audit_build import build_duckdb, read_duckdb, read_postgres, write_postgres
from audit_data import edge_account
from focus_data import focus_case
from helpers import PG, ROOT, draw_seed, postgres_pipeline_env, postgres_schemas, run_meltano

FOCUS = "kore_billing__focus"
COLUMNS = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "ServiceName", "ServiceSubcategory", "x_BillingSessionType", "x_ExcessSessions",
    "x_DisputedCost", "x_UsageSummarySessions",
]  # fmt: skip
DECIMALS = [
    "BilledCost", "ConsumedQuantity", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "ListCost", "ListUnitPrice", "PricingQuantity", "x_ExcessSessions", "x_DisputedCost",
]  # fmt: skip
# Every row's fixed values: FOCUS's allowed values where it has a list, our choice elsewhere.
FIXED = {
    "ChargeCategory": "Usage",
    "ChargeClass": None,
    "ChargeFrequency": "Usage-Based",
    "ConsumedUnit": "Billing Sessions",
    "InvoiceId": None,
    "InvoiceIssuerName": "Kore.ai",
    "PricingCategory": "Standard",
    "PricingUnit": "Billing Sessions",
    "ProviderName": "Kore.ai",
    "PublisherName": "Kore.ai",
    "ResourceType": "App",
    "ServiceCategory": "AI and Machine Learning",
    "ServiceName": "Kore.ai XO Platform",
    "ServiceSubcategory": "Bots",
}


@pytest.fixture(scope="module")
def dbt_duckdb_installed(tmp_path_factory):
    run_meltano(["install", "dbt-duckdb"], tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def built(dbt_duckdb_installed, tmp_path_factory):
    case = focus_case(draw_seed("KORE_FOCUS_SEED"))
    output, database, results, _ = build_duckdb(
        tmp_path_factory.mktemp("focus"),
        case.account.rows,
        case.summaries,
        case.dbt_vars,
        apps=case.apps,
    )
    return case, output, database, results, read_duckdb(database, FOCUS)


def keyed(rows: list[dict]) -> dict[tuple, dict]:
    return {
        (r["ResourceId"], r["ChargePeriodStart"].date(), r["x_BillingSessionType"]): r for r in rows
    }


def test_the_columns_are_focus_names_with_decimal_quantities_and_costs(built):
    case, _, _, results, rows = built
    assert rows, f"seed {case.seed}"
    assert list(rows[0]) == COLUMNS
    for row in rows:
        for name in DECIMALS:
            assert isinstance(row[name], Decimal), (name, row)
    assert {name: r["status"] for name, r in results.items() if "focus" in name} == {
        name: "pass" if name != FOCUS else "success" for name in results if "focus" in name
    }


def test_each_row_holds_the_allowed_values_and_its_periods(built):
    case, _, _, _, rows = built
    for row in rows:
        assert {name: row[name] for name in FIXED} == FIXED, row
        assert row["BillingCurrency"] == case.currency
        assert (row["BillingAccountId"], row["BillingAccountName"]) == (case.account_id, None)
        start = row["ChargePeriodStart"]
        assert start == datetime.combine(start.date(), datetime.min.time())
        assert row["ChargePeriodEnd"] == start + timedelta(days=1)
        month = start.replace(day=1)
        assert row["BillingPeriodStart"] == month
        assert row["BillingPeriodEnd"] == (month + timedelta(days=32)).replace(day=1)
        kind = row["x_BillingSessionType"]
        assert row["ChargeDescription"] == f"Kore.ai XO Platform billing sessions of type {kind}"
        assert row["ResourceName"] == case.names.get(row["ResourceId"])
    assert len({r["BillingPeriodStart"] for r in rows}) == 2, "the days cross a month's end"


def test_the_rows_are_the_priced_app_days_and_types_of_the_data(built):
    case, output, _, _, rows = built
    found = {
        key: (int(r["ConsumedQuantity"]), r["x_UsageSummarySessions"], int(r["x_ExcessSessions"]))
        for key, r in keyed(rows).items()
    }
    assert len(found) == len(rows), "one row per app, day and type"
    assert found == case.expected, f"seed {case.seed}"
    assert {r["x_BillingSessionType"] for r in rows} == set(case.prices)
    assert any(q == 0 and s for q, s, _ in found.values()), "a day billed without sessions"
    assert "ALL" not in {r["ResourceId"] for r in rows}
    lines = [line for line in output.splitlines() if f"{FOCUS} leaves out" in line]
    assert len(lines) == 1, output[-3000:]
    assert f"of type '{case.unpriced}': var kore_billing_price_per_session has no price" in lines[0]


def test_costs_are_quantity_times_price_and_add_up(built):
    case, _, _, _, rows = built
    for row in rows:
        price = case.prices[row["x_BillingSessionType"]]
        assert row["ListUnitPrice"] == row["ContractedUnitPrice"] == price
        cost = row["ConsumedQuantity"] * price
        assert cost == row["BilledCost"] == row["EffectiveCost"] == row["ListCost"]
        assert cost == row["ContractedCost"]
        assert row["PricingQuantity"] == row["ConsumedQuantity"]
        assert row["x_DisputedCost"] == row["x_ExcessSessions"] * price
        if row["x_BillingSessionType"] != "Conversations":
            assert row["x_ExcessSessions"] == 0
    sessions = [r for r in case.account.rows if r["billingSessionType"] in case.prices]
    for kind, price in case.prices.items():
        billed = sum(
            (r["BilledCost"] for r in rows if r["x_BillingSessionType"] == kind), Decimal(0)
        )
        found = sum(1 for r in sessions if r["billingSessionType"] == kind)
        assert billed == found * price, kind
        print(f"{kind}: BilledCost {billed} = {found} sessions x {price}")
    excess = sum(extra for _, _, extra in case.account.over_counted)
    disputed = sum((r["x_DisputedCost"] for r in rows), Decimal(0))
    assert disputed == excess * case.prices["Conversations"] > 0
    print(f"x_DisputedCost {disputed} = {excess} excess sessions x {case.prices['Conversations']}")


@pytest.fixture(scope="module")
def validator():
    """The validator's venv, which `make test` installs first (nothing downloads here)."""
    if not (ROOT / ".venv-focus" / ".installed").is_file():
        pytest.fail("no .venv-focus: run `make focus-validator` (make test does) first")


def export_and_validate(database: Path, out: Path) -> str:
    """The documented commands, as a user runs them: the export, then the validator on both
    files; fails the test with the failing rules when there are any."""
    exported = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "focus_export.py"),
            "--database",
            str(database),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    files = [out / "kore_billing__focus.csv", out / "kore_billing__focus.parquet"]
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "focus_validate.py"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    print(checked.stdout)
    return checked.stdout


def test_the_export_passes_the_focus_validator(built, validator, tmp_path):
    _, _, database, _, rows = built
    said = export_and_validate(database, tmp_path)
    assert said.count("no failing rule") == 2, said
    header = (tmp_path / "kore_billing__focus.csv").read_text().splitlines()
    assert header[0].split(",") == COLUMNS
    assert len(header) == len(rows) + 1
    assert ",Usage,,Kore.ai XO Platform billing sessions of type " in header[1]
    assert "T00:00:00Z," in header[1]


def test_without_prices_the_model_is_empty_and_the_log_says_why(dbt_duckdb_installed, tmp_path):
    acc = edge_account()
    output, database, results, _ = build_duckdb(tmp_path, acc.rows)
    assert read_duckdb(database, FOCUS) == []
    assert results[FOCUS]["status"] == "success"
    assert results["kore_billing__focus_adds_up"]["status"] == "pass"
    [line] = [line for line in output.splitlines() if f"{FOCUS} is empty" in line]
    assert "var kore_billing_price_per_session prices no billing session type" in line


@pytest.mark.parametrize(
    ("dbt_vars", "words"),
    [
        ({"kore_billing_currency": "usd"}, "var kore_billing_currency must be the ISO 4217 code"),
        ({"kore_billing_account_id": " "}, "var kore_billing_account_id must be the ID of your"),
        (
            {"kore_billing_price_per_session": {"Conversations": 0.0000125}},
            "the price of 'Conversations' (1.25e-05) has more than 6 decimal places",
        ),
    ],
)
def test_a_bad_var_fails_the_build_in_one_line(dbt_duckdb_installed, tmp_path, dbt_vars, words):
    output, _, _, code = build_duckdb(tmp_path, edge_account().rows, dbt_vars=dbt_vars, check=False)
    assert code != 0
    assert [line for line in output.splitlines() if words in line], output[-3000:]
    assert "Traceback" not in output


def test_postgres_gives_the_same_rows_with_focus_names(built, tmp_path):
    case, _, _, duckdb_results, rows = built
    with postgres_schemas("kore_focus") as (load_schema, models_schema):
        write_postgres(load_schema, case.account.rows, case.summaries, case.apps)
        run_meltano(["install", "dbt-postgres"], tmp_path)
        run_meltano(
            ["invoke", "dbt-postgres", "build", "--vars", json.dumps(case.dbt_vars)],
            tmp_path,
            env=postgres_pipeline_env(load_schema, models_schema),
        )
        found = read_postgres(models_schema, FOCUS)
        with psycopg.connect(**PG) as conn:
            kinds = dict(
                conn.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = %s and table_name = %s",
                    [models_schema, FOCUS],
                ).fetchall()
            )
    results = json.loads((tmp_path / "dbt-target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in results}
    assert statuses == {name: r["status"] for name, r in duckdb_results.items()}
    assert list(found[0]) == COLUMNS
    assert {kinds[name] for name in DECIMALS} == {"numeric"}
    assert sorted(map(repr, found)) == sorted(map(repr, rows))

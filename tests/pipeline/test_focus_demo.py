"""`make demo`'s FOCUS export, checked by the FinOps Foundation's validator, and the runner
(scripts/focus_validate.py) reporting what the validator fails; and the demo's report
(output/report.html) opened in Chromium. One demo run serves every test of this file.

The demo runs as `make demo` runs it (scripts/demo.py), its emulator on a free port, its DuckDB
file and export in a folder of this test's own (DEMO_OUTPUT) and a state database of its own.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import typing as t
from decimal import Decimal

import duckdb
import pytest
from browser_helpers import chromium, full_page_screenshot, requested_urls
from helpers import ROOT, run_demo
from selenium.webdriver.common.by import By

from tap_kore_billing.sandbox.demo_account import DEMO_PRICES, INJECTED_DAY, demo_sandbox

VALIDATE = ROOT / "scripts" / "focus_validate.py"


def load_runner() -> t.Any:
    spec = importlib.util.spec_from_file_location("focus_validate", VALIDATE)
    assert spec
    assert spec.loader
    runner = importlib.util.module_from_spec(spec)
    sys.modules["focus_validate"] = runner  # its dataclasses look their module up there
    spec.loader.exec_module(runner)
    return runner


@pytest.fixture(scope="module")
def validator():
    """The validator's venv, which `make test` installs first (nothing downloads here)."""
    if not (ROOT / ".venv-focus" / ".installed").is_file():
        pytest.fail("no .venv-focus: run `make focus-validator` (make test does) first")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    return work / "output", run_demo(work)


def test_the_demo_writes_the_focus_export_and_says_where(demo):
    output, printed = demo
    files = [output / "focus" / f"kore_billing__focus.{kind}" for kind in ("csv", "parquet")]
    assert "FOCUS 1.2 export, " in printed
    line = next(line for line in printed.splitlines() if line.startswith("FOCUS 1.2 export, "))
    assert line.endswith(f": {files[0]} and {files[1]}")
    assert all(path.is_file() for path in files)


def test_the_demo_prices_every_session_once(demo):
    output, printed = demo
    with duckdb.connect(str(output / "kore_billing.duckdb"), read_only=True) as db:
        found = dict(
            db.sql(
                "select billingsessiontype, count(*) "
                "from kore_billing.kore_billing.billing_sessions group by 1"
            ).fetchall()
        )
        billed = dict(
            db.sql(
                'select "x_BillingSessionType", sum("BilledCost") '
                "from kore_billing.analytics.kore_billing__focus group by 1"
            ).fetchall()
        )
        excess = db.sql(
            "select sum(excess_sessions) "
            "from kore_billing.analytics.kore_billing__conversation_audit"
        ).fetchone()
        disputed = db.sql(
            'select sum("x_DisputedCost") from analytics.kore_billing__focus'
        ).fetchone()
    prices = {kind: Decimal(str(price)) for kind, price in DEMO_PRICES.items()}
    assert set(found) == set(prices), "the demo account has every type, and prices each"
    assert billed == {kind: found[kind] * prices[kind] for kind in found}
    assert excess
    assert disputed
    assert excess[0] == 2  # the planted over-counted conversation
    assert disputed[0] == excess[0] * prices["Conversations"]
    total = sum(billed.values())
    assert re.search(rf"BilledCost USD {total:,.3f} = sessions x price per type", printed)
    sessions = sum(found.values())
    print(f"demo: BilledCost {total} over {sessions} sessions; x_DisputedCost {disputed[0]}")


def test_the_demo_export_passes_the_focus_validator(demo, validator):
    output, _ = demo
    files = [output / "focus" / f"kore_billing__focus.{kind}" for kind in ("csv", "parquet")]
    done = subprocess.run(
        [sys.executable, str(VALIDATE), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("no failing rule") == 2
    summaries = re.findall(r"Total: \d+ \| Pass: \d+ \| Fail: \d+ \| Skipped: \d+", done.stdout)
    assert len(summaries) == 2
    print(done.stdout)


def test_the_runner_prints_each_failing_rule_and_exits_non_zero(demo, validator, tmp_path):
    """The demo's export with whole-number quantities, as a careless export writes them: the
    validator fails PricingQuantity's type, and the runner says so."""
    output, _ = demo
    lines = (output / "focus" / "kore_billing__focus.csv").read_text().splitlines()
    header = lines[0].split(",")
    at = header.index("PricingQuantity")
    broken = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[at] = str(int(Decimal(cells[at])))
        broken.append(",".join(cells))
    path = tmp_path / "integers.csv"
    path.write_text("\n".join(broken) + "\n")
    done = subprocess.run(
        [sys.executable, str(VALIDATE), str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "  FAIL PricingQuantity-C-001-M: " in done.stdout


def test_only_one_invoice_leaf_under_a_passing_alternative_is_allowed():
    runner = load_runner()

    def head(failing: int) -> str:
        return f"Total: 9 | Pass: {9 - failing} | Fail: {failing} | Skipped: 0\n"

    passing = "✅ InvoiceId-C-003-C: PASS  (violations=0)\n✅ InvoiceId-C-004-C: PASS  (x)\n"
    leaf = "❌ InvoiceId-C-005-C: FAIL  (violations=2)\n"
    one = runner.judge(head(1) + passing + leaf)
    assert (one.ok, one.allowed) == (True, "InvoiceId-C-005-C")
    both = runner.judge(
        head(3)
        + "❌ InvoiceId-C-003-C: FAIL  (a)\n❌ InvoiceId-C-004-C: FAIL  (b)\n"
        + "❌ InvoiceId-C-005-C: FAIL  (c)\n"
    )
    assert not both.ok
    assert set(both.failing) == {"InvoiceId-C-003-C", "InvoiceId-C-004-C", "InvoiceId-C-005-C"}
    other = runner.judge(head(1) + passing + "❌ BilledCost-C-001-M: FAIL  (violations=1)\n")
    assert (other.ok, list(other.failing)) == (False, ["BilledCost-C-001-M"])
    with pytest.raises(runner.ValidatorError):
        runner.judge("no summary here")
    # A failing rule counted but not read (the line format changed) is never a pass.
    with pytest.raises(runner.ValidatorError, match="counts 2 failing rules and 1"):
        runner.judge(head(2) + passing + leaf)


@pytest.fixture(scope="module")
def report_page(demo):
    """The demo's report, loaded from its file in Chromium: the driver, and the URLs and
    console entries of the load."""
    output, _ = demo
    page = output / "report.html"
    assert page.is_file()
    with chromium() as driver:
        driver.get(page.as_uri())
        yield driver, page, requested_urls(driver), driver.get_log("browser")


def test_the_demo_prints_where_its_report_is_and_writes_it_with_its_rows(demo):
    output, printed = demo
    line = next(line for line in printed.splitlines() if line.startswith("report: "))
    assert line.startswith(f"report: {output / 'report.html'} (open it in a browser; ")
    rows = (output / "report.csv").read_text().splitlines()
    assert rows[0].startswith("kind,app_name,app_id,day,")
    assert sum(row.startswith("mismatch,") for row in rows) == 1
    assert sum(row.startswith("finding,") for row in rows) == 4


def test_the_report_loads_from_its_file_with_no_error_and_no_request(report_page):
    _, page, urls, console = report_page
    assert urls == [page.as_uri()], f"the page fetched {urls}"
    assert not [entry for entry in console if entry["level"] in ("SEVERE", "WARNING")], console
    html = page.read_text()
    assert "<script" not in html
    assert "@import" not in html
    assert "url(" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', ""
    )


def test_every_chart_of_the_report_is_drawn(report_page):
    driver, _, _, _ = report_page
    figures = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(figures) == 3 + 1 + 1, "3 apps, 1 routing family, the audit"
    for figure in figures:
        svg = figure.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 300
        assert svg.size["height"] > 100
        marks = svg.find_elements(By.CSS_SELECTOR, ".mark-line path, .mark-rect path")
        assert len([m for m in marks if m.get_attribute("d")]) > 0, "an empty frame"


def test_the_report_says_the_demo_verdict_and_names_each_case_by_id(demo, report_page):
    _, printed = demo
    driver, _, _, _ = report_page
    said = next(line for line in printed.splitlines() if line.startswith("VERDICT: "))
    assert driver.find_element(By.ID, "verdict").text == said
    mismatches = driver.find_elements(By.CSS_SELECTOR, "table.mismatches tbody tr")
    assert [row.text for row in mismatches] == [
        row.text
        for row in mismatches
        if "Claims Bot" in row.text
        and f"{INJECTED_DAY} conversations" in row.text
        and row.text.endswith("3 more billed than found")
    ]
    assert len(mismatches) == 1
    with demo_sandbox() as sb:
        apps = {app["index"]: app["botId"] for app in sb.apps()}
        planted = sb.planted_audit_cases()
    claims_bot = apps[2]
    assert claims_bot in mismatches[0].text
    findings = driver.find_element(By.CSS_SELECTOR, "table.findings").text
    quoted = driver.find_element(By.ID, "quote").text
    for case in planted:
        row = next(
            r.text
            for r in driver.find_elements(By.CSS_SELECTOR, "table.findings tbody tr")
            if case["billingSessionIds"][0] in r.text
        )
        assert case["day"] in row
        assert case["finding"].replace("_", " ") in row
        for session_id in case["billingSessionIds"]:
            assert session_id in findings
            assert session_id in quoted
    # For a person to look at: output/browser/report.png (and the path in the test's output).
    shot = full_page_screenshot(driver, ROOT / "output" / "browser" / "report.png")
    print(f"screenshot of the demo's report: {shot}")

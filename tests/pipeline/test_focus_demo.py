"""`make demo`'s FOCUS export, checked by the FinOps Foundation's validator, and the runner
(scripts/focus_validate.py) reporting what the validator fails.

The demo runs as `make demo` runs it (scripts/demo.py), its emulator on a free port, its DuckDB
file and export in a folder of this test's own (DEMO_OUTPUT) and a state database of its own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import typing as t
from decimal import Decimal

import duckdb
import pytest
from helpers import CAPTURED_OUTPUT, ROOT
from snowflake_helpers import free_port

from tap_kore_billing.sandbox.demo_account import DEMO_PRICES

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
    env = {
        **os.environ,
        "DEMO_OUTPUT": str(work / "output"),
        "DEMO_PORT": str(free_port()),
        "MELTANO_DATABASE_URI": f"sqlite:///{work / 'meltano.db'}",
        "DBT_TARGET_PATH": str(work / "dbt-target"),
        "DBT_LOG_PATH": str(work / "dbt-logs"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return work / "output", done.stdout


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

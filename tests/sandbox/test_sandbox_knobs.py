"""Each emulator knob is declared once and reaches Sandbox(), the command line and the control
endpoint alike; the emulator's modules import neither each other in a cycle nor the tap."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.sandbox.__main__ import _parser
from tap_kore_billing.sandbox.knobs import DATA_KNOBS, KNOBS, RUNTIME_KNOBS, resolve

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "tap_kore_billing" / "sandbox"
END = datetime(2024, 6, 1, tzinfo=timezone.utc)


def test_every_default_passes_its_own_check_and_names_are_unique():
    assert len({knob.name for knob in KNOBS}) == len(KNOBS)
    assert {knob.name for knob in KNOBS} == RUNTIME_KNOBS | DATA_KNOBS
    values = resolve({})
    assert values["max_page_size"] == 50
    assert values["client_secret"] is None  # generated at start
    with pytest.raises(ValueError, match="unknown options"):
        resolve({"max_pagesize": 3})


def test_the_command_line_has_a_flag_for_every_knob_it_can_spell():
    dests = {action.dest for action in _parser()._actions}
    spelled = {knob.name for knob in KNOBS if knob.flag != ""}
    assert spelled <= dests
    args = _parser().parse_args(["--max-page-size", "7", "--no-admin", "--latency-jitter", "0.1"])
    assert (args.max_page_size, args.admin_enabled, args.latency_jitter) == ("7", False, "0.1")
    assert args.error_rate is None  # not given: the declared default applies in Sandbox()


def test_the_command_line_checks_values_like_the_constructor():
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing.sandbox", "--port", "0", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid error_rate='2': rates must be within [0, 1]" in done.stderr


def test_audit_cases_are_checked_on_the_command_line_like_in_the_constructor():
    bad = "over_counted:1:2024-05-01,too_long:2:2024-05-02"
    with pytest.raises(ValueError, match=r"invalid audit_cases=.*too_long.*must be one of"):
        Sandbox(sessions=5, end=END, audit_cases=bad)
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing.sandbox", "--port", "0", "--audit-case", bad],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid audit_cases=" in done.stderr
    assert "the finding must be one of longer_than_15_minutes" in done.stderr


def test_the_constructor_and_the_control_endpoint_share_the_checks():
    with pytest.raises(ValueError, match="invalid latency_jitter=2"):
        Sandbox(sessions=5, end=END, latency_jitter=2)
    with Sandbox(sessions=5, end=END, max_page_size=7) as sb:
        url = f"{sb.url}/__sandbox/configure"
        bad = requests.post(url, json={"latency_jitter": 2}, timeout=5)
        assert bad.status_code == 400
        assert "invalid latency_jitter=2" in bad.text
        fixed = requests.post(url, json={"seed": 3}, timeout=5)
        assert fixed.status_code == 400
        assert "cannot change data-shaping options" in fixed.text
        assert requests.post(url, json={"max_page_size": 9}, timeout=5).status_code == 200
        assert sb._knobs["max_page_size"] == 9


def _imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_cycle_in_the_emulator_and_nothing_from_the_tap():
    package = "tap_kore_billing.sandbox"
    graph = {
        package if path.stem == "__init__" else f"{package}.{path.stem}": {
            name for name in _imports(path) if name.startswith("tap_kore_billing")
        }
        for path in SANDBOX_DIR.glob("*.py")
    }
    for module, imported in graph.items():
        outside = {name for name in imported if not name.startswith("tap_kore_billing.sandbox")}
        assert not outside, f"{module} imports the tap: {outside}"

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    cyclic = [module for module in graph if reaches(module, module, set())]
    assert not cyclic, f"import cycle through {cyclic}"

"""The shell blocks of the README and its docs/ pages that can run here, run as written, so they
cannot drift.

A block marked `<!-- readme-test: NAME -->` (in README.md or docs/*.md) runs in bash with
`set -e`; the emulator stands in for Kore.ai wherever the block needs credentials.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import typing as t
from datetime import date
from pathlib import Path

from helpers import CAPTURED_OUTPUT, SECRETS_SEEN, sandbox_config

from tap_kore_billing.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"<!-- readme-test: ([\w-]+) -->\n```bash\n(.*?)```", re.DOTALL)
# The marked blocks the tests below run (docs/singer-tap.md holds both).
RUN_HERE = ("tap-on-its-own", "plain-singer")


def marked_pages() -> list[Path]:
    """Where marked blocks may live: the README and the pages it links under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def readme_block(name: str) -> str:
    found = [
        block
        for page in marked_pages()
        for marked, block in BLOCK.findall(page.read_text())
        if marked == name
    ]
    assert found, f"neither README.md nor docs/*.md has a block marked readme-test: {name}"
    assert len(found) == 1, f"more than one block is marked readme-test: {name}"
    return found[0]


def run_block(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    return done


def messages(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def session_records(path: Path) -> list[dict]:
    return [
        m for m in messages(path) if m["type"] == "RECORD" and m["stream"] == "billing_sessions"
    ]


def test_the_tap_on_its_own_block_runs_as_written():
    output = ROOT / "output.jsonl"
    output.unlink(missing_ok=True)
    # The emulator's default data is live: what it shows depends on when it starts. A session
    # shown both just before and just after the run was shown during it, and nothing else was.
    before = {r["billingSessionId"] for r in Sandbox().expected()}
    done = run_block(readme_block("tap-on-its-own"), ROOT)
    after = {r["billingSessionId"] for r in Sandbox().expected()}
    assert done.returncode == 0, done.stderr[-3000:]
    kinds = [m["type"] for m in messages(output)]
    assert kinds[0] == "SCHEMA"
    read = [m["record"]["billingSessionId"] for m in session_records(output)]
    assert len(read) == len(set(read))
    assert before & after <= set(read) <= before | after
    assert len(before & after) > 1900
    assert any(
        m["type"] == "RECORD" and m["stream"] == "billing_usage_summary" for m in messages(output)
    )
    assert "STATE" in kinds


def test_the_plain_singer_block_runs_twice_as_written(tmp_path):
    with Sandbox(seed=41, apps=2, sessions=600, max_page_size=50) as sb:
        config = sandbox_config(sb, start_date=min(s["start"] for s in sb.expected()).isoformat())
        (tmp_path / "config.json").write_text(json.dumps(config))
        SECRETS_SEEN.add(sb.client_secret)
        block = readme_block("plain-singer")
        first = run_block(block, tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "Connection test passed" in first.stderr
        first_records = session_records(tmp_path / "output.jsonl")
        assert len(first_records) == len(sb.expected())
        assert json.loads((tmp_path / "state.json").read_text())["type"] == "STATE"

        second = run_block(block, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        again = session_records(tmp_path / "output.jsonl")
        assert 0 < len(again) < len(first_records) / 4, "the second run reads the lookback only"


def load_demo() -> t.Any:
    """scripts/demo.py as a module, for the words it prints."""
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec
    assert spec.loader
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_the_demo_verdict_the_readme_shows_is_the_line_the_demo_prints():
    """The README's example VERDICT, rebuilt by the demo's own words from the demo account: its
    start, the injected day and the three apps (the day count grows with the date)."""
    demo = load_demo()
    shown = re.search(r"^VERDICT: 3 apps, (\d+) days \(1 Sep - (\d+) Dec,", README, re.MULTILINE)
    assert shown, "the README shows no VERDICT line of the demo"
    days, last_day = int(shown.group(1)), int(shown.group(2))
    first = date.fromisoformat(demo.DEMO_START[:10])
    injected = date.fromisoformat(demo.INJECTED_DAY)
    line = demo.verdict_line(
        3, days, first, date(2026, 12, last_day), [("Claims Bot", injected, "conversations", -3)]
    )
    assert f"\n{line}\n" in README


def test_the_demo_audit_line_the_readme_shows_is_the_line_the_demo_prints():
    """The README's AUDIT example, rebuilt by the demo's own words from the cases it plants (a
    session each for the three session rules, a conversation billed three times for two)."""
    demo = load_demo()
    names = {1: "Front Desk", 2: "Claims Bot", 3: "Billing Help"}
    sessions, conversations = [], []
    for case in demo.AUDIT_CASES:
        finding, app, day = case.split(":")
        row = (names[int(app)], date.fromisoformat(day), finding)
        if finding == "over_counted":
            conversations.append((*row, 660, 3, 1, 2, "ids"))
        else:
            sessions.append((*row, "detail"))
    line = demo.audit_line(sessions, conversations)
    assert f"\n{line}\n" in README, line


def test_every_marked_block_is_one_these_tests_run():
    """A block marked in README.md or docs/*.md that no test reads would drift unseen."""
    marked = [name for page in marked_pages() for name, _ in BLOCK.findall(page.read_text())]
    assert sorted(marked) == sorted(RUN_HERE), marked

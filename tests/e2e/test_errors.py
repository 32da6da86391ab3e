"""Bad settings and API refusals end the run with one clear line, exit 1, and no traceback."""

from __future__ import annotations

from datetime import datetime

import pytest
from helpers import run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox


def assert_clean_failure(run, *fragments):
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    error_lines = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert error_lines, run.stderr
    text = "\n".join(error_lines)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert not run.records


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"client_secret": None, "client_id": None}, "client_id"),
        ({"bot_ids": []}, "bot_ids"),
        ({"window_days": 0}, "window_days"),
        ({"window_days": 91}, "window_days"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"end_date": "2024-13-45"}, "end_date"),
        ({"end_date": "2023-06-01T00:00:00Z"}, "end_date"),
        ({"api_timezone": "Mars/Olympus_Mons"}, "api_timezone"),
        ({"api_scope": "tenant"}, "api_scope"),
        ({"api_url": "http://platform.kore.ai"}, "api_url"),
        ({"page_size": 0}, "page_size"),
    ],
)
def test_bad_settings_fail_before_any_request(sandbox, tmp_path, overrides, setting):
    config = {k: v for k, v in {**sandbox_config(sandbox), **overrides}.items() if v is not None}
    before = sandbox.stats()["requests"]

    run = run_tap(tmp_path, config)

    assert_clean_failure(run, setting)
    assert sandbox.stats()["requests"] == before


def test_wrong_secret_is_a_401_that_says_what_to_check(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, client_secret="obviously-wrong-test-secret"))
    assert_clean_failure(run, "HTTP 401", "Invalid SDK credentials", "client_id/client_secret")


def test_an_app_the_credentials_cannot_read_is_a_403_naming_the_partition(sandbox, tmp_path):
    stranger = "st-00000000-0000-0000-0000-000000000000"
    run = run_tap(tmp_path, sandbox_config(sandbox, bot_ids=[stranger]))
    assert_clean_failure(run, "HTTP 403", stranger, "skip 0")


def test_a_rejected_date_range_is_a_400_with_the_api_message(tmp_path):
    # Another deployment may accept shorter ranges than the documented three months.
    with Sandbox(seed=2, apps=1, sessions=20, max_range_days=7) as sb:
        run = run_tap(tmp_path, sandbox_config(sb, window_days=30))
        assert_clean_failure(run, "HTTP 400", "window_days")


def test_an_unparseable_datetime_stops_the_run_before_its_window_is_bookmarked(sandbox, tmp_path):
    app = sandbox.bot_ids[0]
    february = [s for s in sandbox.expected(bot_id=app) if s["start"].month == 2]
    bad = february[len(february) // 2]
    sandbox.configure(corrupt_ids=[bad["billingSessionId"]])
    try:
        run = run_tap(tmp_path, sandbox_config(sandbox))
    finally:
        sandbox.configure(corrupt_ids=[])

    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert f"billingSessionId={bad['billingSessionId']}" in last
    assert "31-02-2024 25:61:00 xm" in last
    # Windows before the bad row were saved; none at or after it.
    saved = [
        datetime.fromisoformat(p["replication_key_value"])
        for state in run.states
        for p in state["bookmarks"].get("billing_sessions", {}).get("partitions", [])
        if p["context"] == {"botId": app}
    ]
    assert saved, "the windows before the bad row should have been bookmarked"
    assert max(saved) <= bad["start"]


def test_debug_logs_carry_no_secret_or_token(sandbox, tmp_path, monkeypatch):
    # The suite-wide check greps every run; this one makes sure runs at DEBUG are among them.
    monkeypatch.setenv("TEST_TAP_LOG_LEVEL", "DEBUG")
    ok = run_tap(tmp_path, sandbox_config(sandbox, bot_ids=sandbox.bot_ids[:1]))
    refused = run_tap(
        tmp_path, sandbox_config(sandbox, client_secret="obviously-fake-debug-secret")
    )
    assert ok.exit_code == 0, ok.stderr
    assert "DEBUG" in ok.stderr
    assert refused.exit_code == 1
    for run in (ok, refused):
        assert sandbox.client_secret not in run.stdout + run.stderr
        assert "obviously-fake-debug-secret" not in run.stdout + run.stderr
        assert "eyJ" not in run.stdout + run.stderr


def test_a_corrupt_bookmark_in_state_is_one_clear_line(sandbox, tmp_path):
    state = {
        "bookmarks": {
            "billing_sessions": {
                "partitions": [
                    {
                        "context": {"botId": sandbox.bot_ids[0]},
                        "replication_key": "billingSessionEndDateTime",
                        "replication_key_value": "11-20-2026 2:05:03 pm",
                    }
                ]
            }
        }
    }
    run = run_tap(tmp_path, sandbox_config(sandbox), state=state)
    assert_clean_failure(run, "replication_key_value", "11-20-2026 2:05:03 pm")


def test_a_mistyped_secret_is_not_echoed(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, client_secret=98765432109876543210))
    assert_clean_failure(run, "client_secret")
    assert "98765432109876543210" not in run.stdout + run.stderr

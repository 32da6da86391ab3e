"""End-to-end behaviour of the tap against the emulator, over real HTTP."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime

import jwt
from helpers import CAPTURED_OUTPUT, run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

JAN = datetime.fromisoformat("2024-01-01T00:00:00+00:00")
MAR = datetime.fromisoformat("2024-03-01T00:00:00+00:00")
AFTER_MAR = "2024-03-02T00:00:00Z"  # sessions starting just before MAR end after it
DATETIME_FIELDS = (
    "conversationSessionStartDateTime",
    "conversationSessionEndDateTime",
    "billingSessionStartDateTime",
    "billingSessionEndDateTime",
)


def assert_exactly_once(run, expected):
    counts = collections.Counter(run.ids)
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated, f"sessions emitted more than once: {list(repeated)[:5]}"
    expected_ids = {s["billingSessionId"] for s in expected}
    assert set(counts) == expected_ids, (
        f"missing {len(expected_ids - set(counts))}, unexpected {len(set(counts) - expected_ids)}"
    )


def test_bot_scope_emits_every_session_once_with_a_bookmark_per_app(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox))

    assert run.exit_code == 0, run.stderr
    assert run.messages[0]["type"] == "SCHEMA"
    assert run.messages[0]["key_properties"] == ["billingSessionId"]
    assert_exactly_once(run, sandbox.expected())
    assert set(run.bookmarks()) == {f"botId={bot}" for bot in sandbox.bot_ids}


def test_records_carry_utc_datetimes_equal_to_the_source_instants(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, bot_ids=sandbox.bot_ids[:1]))
    assert run.exit_code == 0, run.stderr
    by_id = {s["billingSessionId"]: s for s in sandbox.expected(bot_id=sandbox.bot_ids[0])}

    for record in run.records:
        source = by_id[record["billingSessionId"]]
        end = datetime.fromisoformat(record["billingSessionEndDateTime"])
        offset = end.utcoffset()
        assert offset is not None
        assert offset.total_seconds() == 0
        assert end == source["end"]
        assert datetime.fromisoformat(record["billingSessionStartDateTime"]) == source["start"]
        for name in DATETIME_FIELDS:
            assert record[name] is None or record[name].endswith("+00:00")


def test_rows_without_conversation_fields_load_as_nulls_and_extra_fields_are_dropped(
    sandbox, tmp_path
):
    run = run_tap(tmp_path, sandbox_config(sandbox))
    assert run.exit_code == 0, run.stderr
    notifications = [r for r in run.records if r["billingSessionType"] != "Conversations"]
    assert notifications, "the seeded data should contain notification rows"
    for record in notifications:
        assert record["conversationSessionId"] is None
        assert record["conversationSessionStartDateTime"] is None
    schema_fields = set(run.messages[0]["schema"]["properties"])
    assert all(set(r) <= schema_fields for r in run.records)
    assert "Schema drift" in run.stderr


def test_pages_are_complete_when_the_server_caps_the_page_size(sandbox, tmp_path):
    # Asking 500 per page of a server that sends 50: skip must advance by rows received.
    run = run_tap(tmp_path, sandbox_config(sandbox, page_size=500))
    assert run.exit_code == 0, run.stderr
    assert_exactly_once(run, sandbox.expected())


def test_sessions_on_window_edges_arrive_once(tmp_path):
    with Sandbox(
        seed=11,
        apps=1,
        sessions=600,
        start=JAN,
        end=datetime.fromisoformat("2024-02-01T00:00:00+00:00"),
        boundary_fraction=0.2,
        max_page_size=25,
    ) as sb:
        run = run_tap(tmp_path, sandbox_config(sb, window_days=1, end_date="2024-02-02T00:00:00Z"))
        assert run.exit_code == 0, run.stderr
        assert_exactly_once(run, sb.expected())


def test_admin_scope_without_apps_reads_the_whole_account(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, api_scope="admin", bot_ids=[]))
    assert run.exit_code == 0, run.stderr
    assert_exactly_once(run, sandbox.expected())
    assert list(run.bookmarks()) == ["botId=*"]


def test_admin_scope_with_apps_filters_and_bookmarks_per_app(sandbox, tmp_path):
    app = sandbox.bot_ids[1]
    run = run_tap(tmp_path, sandbox_config(sandbox, api_scope="admin", bot_ids=[app]))
    assert run.exit_code == 0, run.stderr
    assert_exactly_once(run, sandbox.expected(bot_id=app))
    assert list(run.bookmarks()) == [f"botId={app}"]


def test_channels_are_requested_and_bookmarked_separately(sandbox, tmp_path):
    channels = sandbox.channels[:2]
    run = run_tap(tmp_path, sandbox_config(sandbox, channels=channels))
    assert run.exit_code == 0, run.stderr
    expected = [s for bot in sandbox.bot_ids for ch in channels for s in sandbox.expected(bot, ch)]
    assert_exactly_once(run, expected)
    assert set(run.bookmarks()) == {
        f"botId={bot} channel={ch}" for bot in sandbox.bot_ids for ch in channels
    }


def test_every_request_carries_a_fresh_single_use_jwt(tmp_path):
    # The emulator enforces jti: a token used twice is refused with 401.
    with Sandbox(seed=3, apps=1, sessions=400, start=JAN, end=MAR, max_page_size=20) as sb:
        run = run_tap(tmp_path, sandbox_config(sb, end_date=AFTER_MAR))
        assert run.exit_code == 0, run.stderr
        stats = sb.stats()
        assert stats["requests"] > 20
        assert stats["jti_rejected"] == 0
        assert stats["by_status"] == {"200": stats["requests"]}
        assert_exactly_once(run, sb.expected())


def test_a_ready_auth_token_is_used_as_is(tmp_path):
    with Sandbox(seed=3, apps=1, sessions=50, start=JAN, end=MAR, enforce_jti=False) as sb:
        token = jwt.encode(
            {"appId": sb.client_id, "sub": "t", "jti": uuid.uuid4().hex, "exp": time.time() + 600},
            sb.client_secret,
            algorithm="HS256",
        )
        config = sandbox_config(sb, end_date=AFTER_MAR, auth_token=token)
        del config["client_id"], config["client_secret"]
        run = run_tap(tmp_path, config)
        assert run.exit_code == 0, run.stderr
        assert_exactly_once(run, sb.expected())


def test_apps_are_fetched_in_parallel_with_exact_state_per_app(tmp_path):
    feb = datetime.fromisoformat("2024-02-01T00:00:00+00:00")
    with Sandbox(
        seed=8, apps=3, sessions=150, start=JAN, end=feb, slow_rate=1.0, slow_seconds=0.3
    ) as sb:
        config = sandbox_config(sb, end_date="2024-02-02T00:00:00Z", window_days=40)
        parallel = run_tap(tmp_path, config)
        assert parallel.exit_code == 0, parallel.stderr
        assert sb.stats()["max_in_flight"] == 3
        sb.reset_stats()
        serial = run_tap(tmp_path, {**config, "max_workers": 1})
        assert serial.exit_code == 0, serial.stderr
        assert sb.stats()["max_in_flight"] == 1

        assert_exactly_once(parallel, sb.expected())
        assert sorted(parallel.ids) == sorted(serial.ids)

        def by_app(run):
            entries = run.final_state["bookmarks"]["billing_sessions"]["partitions"]
            return {entry["context"]["botId"]: entry for entry in entries}

        assert by_app(parallel) == by_app(serial)
        for entry in by_app(parallel).values():
            newest = max(s["end"] for s in sb.expected(bot_id=entry["context"]["botId"]))
            assert datetime.fromisoformat(entry["replication_key_value"]) == newest
        frontier = max(entry["replication_key_value"] for entry in by_app(parallel).values())
        for entry in by_app(parallel).values():
            assert entry["checked_through"] == frontier


def test_repeated_or_padded_app_ids_are_fetched_once(sandbox, tmp_path):
    app = sandbox.bot_ids[0]
    run = run_tap(tmp_path, sandbox_config(sandbox, bot_ids=[app, f" {app} ", app]))
    assert run.exit_code == 0, run.stderr
    assert_exactly_once(run, sandbox.expected(bot_id=app))


def test_settings_from_environment_variables_as_meltano_passes_them(sandbox, tmp_path):
    env = {
        **os.environ,
        "TAP_KORE_BILLING_API_URL": sandbox.url,
        "TAP_KORE_BILLING_CLIENT_ID": sandbox.client_id,
        "TAP_KORE_BILLING_CLIENT_SECRET": sandbox.client_secret,
        "TAP_KORE_BILLING_BOT_IDS": ",".join(sandbox.bot_ids),
        "TAP_KORE_BILLING_START_DATE": "2024-01-01T00:00:00Z",
        "TAP_KORE_BILLING_LOOKBACK_HOURS": "1.5",
        "TAP_KORE_BILLING_REQUEST_TIMEOUT": "30",
        "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
        "TAP_KORE_BILLING_SUMMARY_POLL_SECONDS": "0.01",
        "TAP_KORE_BILLING_SUMMARY_GRANULARITY": "month",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", "--config", "ENV"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [
        json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"type":"RECORD"')
    ]
    ids = [r["record"]["billingSessionId"] for r in records if r["stream"] == "billing_sessions"]
    summary = [r["record"] for r in records if r["stream"] == "billing_usage_summary"]
    assert summary
    assert {r["granularity"] for r in summary} == {"month"}
    assert sorted(ids) == sorted(s["billingSessionId"] for s in sandbox.expected())

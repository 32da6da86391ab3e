"""Incremental syncs: bookmarks per partition, lookback, resumable backfills, bounded runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from helpers import CAPTURED_OUTPUT, SECRETS_SEEN, run_tap, sandbox_config

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc


def test_second_run_reads_only_the_lookback_and_gets_new_and_late_sessions(tmp_path):
    # Data up to an hour ago; "late" sessions end in the 12 hours before that but are hidden
    # during the first run, "new" ones happen after it.
    with Sandbox(seed=21, apps=2, sessions=800, late=15, new=10, max_page_size=50) as sb:
        start = min(s["start"] for s in sb.expected()).replace(microsecond=0)
        config = sandbox_config(sb, start_date=start.isoformat())
        first = run_tap(tmp_path, config)
        assert first.exit_code == 0, first.stderr
        assert set(first.ids) == {s["billingSessionId"] for s in sb.expected()}
        bookmarks = first.bookmarks()
        assert set(bookmarks) == {f"botId={bot}" for bot in sb.bot_ids}

        before = {s["billingSessionId"] for s in sb.expected()}
        sb.reveal()
        revealed = {s["billingSessionId"] for s in sb.expected()} - before
        assert len(revealed) == 25

        second = run_tap(tmp_path, config, state=first.final_state)
        assert second.exit_code == 0, second.stderr
        assert revealed <= set(second.ids)
        assert len(second.ids) == len(set(second.ids))
        # Only the lookback is re-read: nothing ends before bookmark - 24 h.
        earliest_bookmark = min(datetime.fromisoformat(v) for v in bookmarks.values())
        for record in second.records:
            ended = datetime.fromisoformat(record["billingSessionEndDateTime"])
            assert ended >= earliest_bookmark - timedelta(hours=24)
        assert len(second.ids) < len(first.ids) / 4


def test_bookmark_never_passes_the_run_start_and_never_goes_back(sandbox, tmp_path):
    first = run_tap(tmp_path, sandbox_config(sandbox))
    finished = datetime.now(tz=UTC)
    partitions = first.final_state["bookmarks"]["billing_sessions"]["partitions"]
    for entry in partitions:
        # The bookmark is the newest session the API has shown for the app...
        newest = max(s["end"] for s in sandbox.expected(bot_id=entry["context"]["botId"]))
        assert datetime.fromisoformat(entry["replication_key_value"]) == newest
        # ...and the app counts as read through the newest session the API has shown for any
        # app (it may still publish sessions after it), never past the run's start.
        checked = datetime.fromisoformat(entry["checked_through"])
        assert checked == max(s["end"] for s in sandbox.expected())
        assert checked <= finished

    # A bounded re-run of an old quarter must not move the bookmark backwards.
    again = run_tap(
        tmp_path,
        sandbox_config(sandbox, end_date="2024-02-01T00:00:00Z"),
        state=first.final_state,
    )
    assert again.exit_code == 0, again.stderr
    assert again.bookmarks() == first.bookmarks()


def test_a_bookmark_in_the_future_yields_nothing(sandbox, tmp_path):
    future = (datetime.now(tz=UTC) + timedelta(days=400)).isoformat()
    state = {
        "bookmarks": {
            "billing_sessions": {
                "partitions": [
                    {
                        "context": {"botId": bot},
                        "replication_key": "billingSessionEndDateTime",
                        "replication_key_value": future,
                    }
                    for bot in sandbox.bot_ids
                ]
            }
        }
    }
    run = run_tap(tmp_path, sandbox_config(sandbox), state=state)
    assert run.exit_code == 0, run.stderr
    assert run.records == []
    assert set(run.bookmarks().values()) == {future}


def test_end_date_bounds_the_run_and_start_date_moved_earlier_changes_nothing(sandbox, tmp_path):
    end_date = "2024-03-01T00:00:00+00:00"
    run = run_tap(tmp_path, sandbox_config(sandbox, end_date=end_date))
    assert run.exit_code == 0, run.stderr
    ends = [datetime.fromisoformat(r["billingSessionEndDateTime"]) for r in run.records]
    assert ends
    assert max(ends) <= datetime.fromisoformat(end_date)
    expected = {
        s["billingSessionId"]
        for s in sandbox.expected()
        if datetime.fromisoformat("2024-01-01T00:00:00+00:00")
        <= s["end"]
        <= datetime.fromisoformat(end_date)
    }
    assert set(run.ids) == expected
    partitions = run.final_state["bookmarks"]["billing_sessions"]["partitions"]
    frontier = max(run.bookmarks().values())
    assert {p["checked_through"] for p in partitions} == {frontier}
    assert max(run.bookmarks().values()) <= end_date

    earlier = run_tap(
        tmp_path,
        sandbox_config(sandbox, start_date="2020-01-01T00:00:00Z", end_date=end_date),
        state=run.final_state,
    )
    assert earlier.exit_code == 0, earlier.stderr
    # Only the lookback (and an hour for sessions' length) before the bookmark is read again,
    # not everything since 2020.
    floor = datetime.fromisoformat(min(run.bookmarks().values())) - timedelta(hours=25)
    assert all(
        datetime.fromisoformat(r["billingSessionEndDateTime"]) >= floor for r in earlier.records
    )
    assert len(earlier.records) < len(run.records) / 10


def test_state_stays_one_entry_per_partition_and_is_emitted_per_window(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox, window_days=7))
    assert run.exit_code == 0, run.stderr
    partitions = run.final_state["bookmarks"]["billing_sessions"]["partitions"]
    assert len(partitions) == len(sandbox.bot_ids)
    # One STATE per finished window (roughly), each only ever moving forward.
    assert len(run.states) > 20
    seen: dict[str, str] = {}
    for state in run.states:
        for part in state["bookmarks"].get("billing_sessions", {}).get("partitions", []):
            key = part["context"]["botId"]
            assert part["replication_key_value"] >= seen.get(key, "")
            seen[key] = part["replication_key_value"]


def test_killed_backfill_resumes_at_the_first_unfinished_window(tmp_path):
    with Sandbox(
        seed=4,
        apps=2,
        sessions=3000,
        start=datetime(2023, 1, 1, tzinfo=UTC),
        end=datetime(2024, 1, 1, tzinfo=UTC),
        max_page_size=50,
    ) as sb:
        config = sandbox_config(
            sb, start_date="2023-01-01T00:00:00Z", end_date="2024-01-01T00:00:00Z", window_days=15
        )
        full = run_tap(tmp_path, config)
        assert full.exit_code == 0, full.stderr
        full_requests = sb.stats()["requests"]
        sb.reset_stats()

        # Kill the tap (SIGKILL: no chance to flush anything) once it has finished some windows.
        SECRETS_SEEN.add(config["client_secret"])
        config_path = tmp_path / "killed.json"
        config_path.write_text(json.dumps(config))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tap_kore_billing", "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        seen_lines = []
        windows_done = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            seen_lines.append(line)
            message = json.loads(line)
            if message["type"] == "STATE" and message["value"]["bookmarks"].get(
                "billing_sessions", {}
            ).get("partitions"):
                windows_done += 1
                if windows_done == 30:
                    proc.kill()
                    break
        proc.wait()
        CAPTURED_OUTPUT.append("".join(seen_lines))
        messages = [json.loads(line) for line in seen_lines]
        emitted = {m["record"]["billingSessionId"] for m in messages if m["type"] == "RECORD"}
        last_state = next(m["value"] for m in reversed(messages) if m["type"] == "STATE")
        assert windows_done == 30, "the tap finished before it could be killed"
        sb.reset_stats()

        resumed = run_tap(tmp_path, config, state=last_state)
        assert resumed.exit_code == 0, resumed.stderr
        resumed_requests = sb.stats()["requests"]

        assert emitted | set(resumed.ids) == set(full.ids)
        assert resumed_requests < full_requests * 0.75
        print(f"full backfill: {full_requests} requests; resumed after kill: {resumed_requests}")


def test_a_stream_level_bookmark_from_another_tool_is_honoured(sandbox, tmp_path):
    state = {
        "bookmarks": {
            "billing_sessions": {
                "replication_key": "billingSessionEndDateTime",
                "replication_key_value": "2024-05-01T00:00:00+00:00",
            }
        }
    }
    run = run_tap(tmp_path, sandbox_config(sandbox), state=state)
    assert run.exit_code == 0, run.stderr
    floor = datetime(2024, 4, 30, tzinfo=UTC)
    assert run.records
    assert all(datetime.fromisoformat(r["billingSessionEndDateTime"]) >= floor for r in run.records)


def test_a_window_the_api_cuts_short_is_not_bookmarked(tmp_path):
    # From skip 100 on, the emulator answers moreAvailable with no rows: the window ends with a
    # warning, and the bookmark stays before it so the next run reads it again.
    with Sandbox(
        seed=6,
        apps=1,
        sessions=900,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 5, 1, tzinfo=UTC),
        max_page_size=50,
    ) as sb:
        sb.configure(stall_after_skip=100)
        config = sandbox_config(sb, end_date="2024-05-02T00:00:00Z")
        cut = run_tap(tmp_path, config)
        # Everything else is extracted, and the run fails so a schedule does not stay green.
        assert cut.exit_code == 1, cut.stderr
        assert "Traceback" not in cut.stderr
        [line] = [line for line in cut.stderr.splitlines() if "| ERROR" in line]
        assert "the API cut short a window" in line
        assert "window_days" in line
        bookmarks = cut.bookmarks() if cut.states else {}
        assert all(
            datetime.fromisoformat(v) <= datetime(2024, 1, 1, tzinfo=UTC)
            for v in bookmarks.values()
        )

        sb.configure(stall_after_skip=None)
        state = cut.final_state if bookmarks else None
        again = run_tap(tmp_path, config, state=state)
        assert again.exit_code == 0, again.stderr
        assert set(cut.ids) | set(again.ids) == {s["billingSessionId"] for s in sb.expected()}

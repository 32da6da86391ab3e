"""Records are written a page at a time only where the SDK's per-record steps change nothing.

The SDK's loop deselects properties, runs stream maps and encodes each record alone; the tap
writes a page's records in one call when none of that applies. Both must write the same lines.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import typing as t
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import (
    CAPTURED_OUTPUT,
    SESSIONS,
    TapRun,
    catalog_selecting,
    run_tap,
    sandbox_config,
)

from tap_kore_billing.run.output import written_as_read
from tap_kore_billing.sandbox import Sandbox
from tap_kore_billing.tap import TapKoreBilling

END = "2024-05-10T00:00:00Z"  # a fixed end: both runs read exactly the same sessions
START = datetime(2024, 1, 1, tzinfo=timezone.utc)  # the tests' start_date
# An identity map for each stream: no change to any record, but a stream map all the same.
IDENTITY_MAPS: dict[str, t.Any] = {
    "stream_maps": {"billing_sessions": {}, "billing_usage_summary": {}}
}


# time_extracted is the moment of writing: the one part two runs cannot share.
_EXTRACTED = re.compile(r',"time_extracted":"[^"]*"')


def _lines_without_extraction_time(stdout: str, kind: str) -> list[str]:
    return sorted(
        _EXTRACTED.sub("", line)
        for line in stdout.splitlines()
        if line.startswith(f'{{"type":"{kind}"')
    )


def _by_partition(state: dict) -> dict:
    # Partitions finish in parallel: their order in the state is not part of its meaning.
    return {
        stream: {json.dumps(p["context"], sort_keys=True): p for p in entry.get("partitions", [])}
        for stream, entry in state["bookmarks"].items()
    }


def test_both_paths_write_identical_records_schemas_and_state(sandbox, tmp_path):
    config = sandbox_config(sandbox, end_date=END)
    page_at_a_time = run_tap(tmp_path, config)
    per_record = run_tap(tmp_path, {**config, **IDENTITY_MAPS})
    assert page_at_a_time.exit_code == per_record.exit_code == 0, per_record.stderr[-2000:]

    records = _lines_without_extraction_time(page_at_a_time.stdout, "RECORD")
    assert records == _lines_without_extraction_time(per_record.stdout, "RECORD")
    inventory = page_at_a_time.stream_records("apps") + page_at_a_time.stream_records("app_links")
    assert len(records) == len(page_at_a_time.records) + len(page_at_a_time.summary) + len(
        inventory
    )
    assert inventory
    assert page_at_a_time.records
    assert page_at_a_time.summary
    # Rows without conversation datetimes (notifications) are among them.
    assert any(r["conversationSessionStartDateTime"] is None for r in page_at_a_time.records)
    assert _lines_without_extraction_time(
        page_at_a_time.stdout, "SCHEMA"
    ) == _lines_without_extraction_time(per_record.stdout, "SCHEMA")
    assert _by_partition(page_at_a_time.final_state) == _by_partition(per_record.final_state)
    # Every record message still says when it was extracted.
    assert all("time_extracted" in m for m in page_at_a_time.messages if m["type"] == "RECORD")


def test_both_paths_write_the_same_lines_in_the_same_order(tmp_path):
    # One app, so nothing runs in parallel; one window of more than 10,000 records: the SDK
    # writes a STATE between records at that interval, before the window's bookmark.
    with Sandbox(
        seed=11,
        apps=1,
        sessions=12_000,
        start=datetime(2024, 1, 1, tzinfo=timezone.utc),
        end=datetime(2024, 3, 1, tzinfo=timezone.utc),
        max_page_size=1000,
    ) as sb:
        config = sandbox_config(sb, end_date="2024-03-01T00:00:00Z", page_size=1000, window_days=90)
        page_at_a_time = run_tap(tmp_path, config, streams=SESSIONS)
        identity: dict[str, t.Any] = {"stream_maps": {"billing_sessions": {}}}
        per_record = run_tap(tmp_path, {**config, **identity}, streams=SESSIONS)
    assert page_at_a_time.exit_code == per_record.exit_code == 0, per_record.stderr[-2000:]
    assert len(page_at_a_time.records) > 10_000

    def in_order(run: TapRun) -> list[str]:
        return [_EXTRACTED.sub("", line) for line in run.stdout.splitlines()]

    assert in_order(page_at_a_time) == in_order(per_record)


def test_in_batch_mode_no_bookmark_goes_out_before_the_batch_file_with_its_records(
    sandbox, tmp_path
):
    lookback = timedelta(hours=24)
    config = sandbox_config(
        sandbox,
        end_date=END,
        lookback_hours=24,
        batch_config=_batch_config(tmp_path, batch_size=200),
    )
    run = run_tap(tmp_path, config, streams=SESSIONS)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert not run.records
    delivered: dict[str, datetime] = {}  # session -> its end, from batch files sent so far
    states_checked = 0
    for message in run.messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                data = Path(url.removeprefix("file://")).read_bytes()
                if data[:2] == b"\x1f\x8b":  # the SDK's jsonl batches come gzipped
                    data = gzip.decompress(data)
                for line in data.decode().splitlines():
                    record = json.loads(line)
                    delivered[record["billingSessionId"]] = record["billingSessionEndDateTime"]
        elif message["type"] == "STATE":
            entries = message["value"]["bookmarks"].get("billing_sessions", {})
            for entry in entries.get("partitions", []):
                # The next run reads from checked_through minus the lookback: everything
                # before that must have gone out already.
                read = datetime.fromisoformat(entry["checked_through"]) - lookback
                bot = entry["context"]["botId"]
                missing = [
                    row["billingSessionId"]
                    for row in sandbox.published_expected(bot_id=bot)
                    if START <= row["end"] < read and row["billingSessionId"] not in delivered
                ]
                assert not missing, (entry, len(missing))
                states_checked += 1
    assert states_checked
    wanted = {
        row["billingSessionId"]
        for row in sandbox.published_expected()
        if START <= row["end"] <= datetime.fromisoformat(END)
    }
    assert set(delivered) == wanted


def _batch_config(tmp_path: Path, batch_size: int = 10_000) -> dict:
    return {
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": f"file://{tmp_path}/batches", "prefix": "batch-"},
        "batch_size": batch_size,
    }


def test_batch_files_are_refused_where_a_stream_map_would_not_apply(sandbox, tmp_path):
    maps = {"billing_sessions": {"koreUserId": "md5(koreUserId) if koreUserId else None"}}
    config = sandbox_config(sandbox, batch_config=_batch_config(tmp_path), stream_maps=maps)
    run = run_tap(tmp_path, config, streams=SESSIONS)
    assert run.exit_code == 1
    assert "batch_config cannot be combined with stream maps" in run.stderr
    assert not any(m["type"] in ("BATCH", "RECORD") for m in run.messages)
    assert not (tmp_path / "batches").exists() or not any((tmp_path / "batches").iterdir())


def test_a_batch_run_stopped_by_a_signal_sends_no_state_ahead_of_its_batch_files(tmp_path):
    with Sandbox(seed=12, apps=1, sessions=3000, max_page_size=50) as sb:
        # A slow run (5 requests a minute) with every record in one batch file at the end.
        config = sandbox_config(sb, batch_config=_batch_config(tmp_path), requests_per_minute=5)
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog_selecting(SESSIONS)))
        command = [sys.executable, "-m", "tap_kore_billing", "--config", str(config_path)]
        command += ["--catalog", str(catalog_path)]
        debug = {**os.environ, "TAP_KORE_BILLING_LOGLEVEL": "DEBUG"}  # a line per window
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=debug
        ) as tap:
            assert tap.stderr is not None
            # Once a window is done its bookmark has moved in memory, its records not yet out.
            for line in tap.stderr:
                if re.search(r"Partition \S+ window 1/", line):
                    break
            tap.send_signal(signal.SIGTERM)
            stdout, stderr = tap.communicate(timeout=60)
    CAPTURED_OUTPUT.append(stdout + stderr)
    messages = [json.loads(line) for line in stdout.splitlines()]
    assert not any(m["type"] == "BATCH" for m in messages)
    bookmarks = [
        m["value"]["bookmarks"].get("billing_sessions", {}).get("partitions")
        for m in messages
        if m["type"] == "STATE"
    ]
    assert not any(bookmarks), bookmarks
    assert "in BATCH mode the last STATE sent stands" in stderr


def test_a_property_left_out_of_the_catalog_is_not_written(sandbox, tmp_path):
    catalog = catalog_selecting(("billing_sessions",))
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "billing_sessions")
    for item in entry["metadata"]:
        if item["breadcrumb"] == ["properties", "channelUserId"]:
            item["metadata"]["selected"] = False
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    run = run_tap(
        tmp_path, sandbox_config(sandbox, end_date=END), args=("--catalog", str(catalog_path))
    )
    assert run.exit_code == 0, run.stderr[-2000:]
    assert run.records
    assert all("channelUserId" not in r and "koreUserId" in r for r in run.records)


def _page_at_a_time(config: dict, catalog: dict | None = None) -> bool:
    tap = TapKoreBilling(config=config, catalog=catalog, parse_env_config=False)
    stream = tap.streams["billing_sessions"]
    return written_as_read(stream, tap.message_writer, write_messages=True)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, True),
        (IDENTITY_MAPS, False),
        ({"stream_maps": {"billing_sessions": {"koreUserId": None}}}, False),
        ({"stream_maps": {"billing_sessions": None}}, False),
        ({"flattening_enabled": True, "flattening_max_depth": 1}, False),
    ],
)
def test_the_page_at_a_time_path_is_taken_only_when_nothing_per_record_applies(
    sandbox, extra, expected
):
    # The comparison above proves something only if its two runs took different paths.
    assert _page_at_a_time({**sandbox_config(sandbox), **extra}) is expected


def test_a_deselected_property_takes_the_sdks_path(sandbox):
    catalog = catalog_selecting(("billing_sessions",))
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "billing_sessions")
    assert _page_at_a_time(sandbox_config(sandbox), catalog) is True
    for item in entry["metadata"]:
        if item["breadcrumb"] == ["properties", "channelUserId"]:
            item["metadata"]["selected"] = False
    assert _page_at_a_time(sandbox_config(sandbox), catalog) is False

"""What a user sees at the command line: state files of every shape, the connection test, a
target that stops reading, malformed files, every bad setting at once, and retry waits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from helpers import (
    CAPTURED_OUTPUT,
    SECRETS_SEEN,
    SESSIONS,
    run_tap,
    sandbox_config,
    unreachable_config,
)

from tap_kore_billing.sandbox import Sandbox

UTC = timezone.utc


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def test_a_whole_state_message_is_honoured_like_its_value(sandbox, tmp_path):
    first = run_tap(tmp_path, sandbox_config(sandbox))
    assert first.exit_code == 0, first.stderr
    last_line = next(
        line for line in reversed(first.stdout.splitlines()) if '"type":"STATE"' in line
    )
    as_printed = run_tap(tmp_path, sandbox_config(sandbox), state=json.loads(last_line))
    as_value = run_tap(tmp_path, sandbox_config(sandbox), state=first.final_state)
    assert as_printed.exit_code == as_value.exit_code == 0, as_printed.stderr
    # Both read only the lookback, not the whole history again.
    assert len(as_printed.ids) == len(as_value.ids) < len(first.ids) / 4


@pytest.mark.parametrize(
    "state",
    [
        {"value": {"bookmarks": {}}},
        {"type": "RECORD", "record": {}},
        {"billing_sessions": {"replication_key_value": "2024-01-01"}},
        [],
    ],
)
def test_a_state_of_another_shape_is_refused_naming_the_file(sandbox, tmp_path, state):
    run = run_tap(tmp_path, sandbox_config(sandbox), state=state)
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    [line] = error_lines(run.stderr)
    assert re.search(r"state file \S+state-\d+\.json is not a Singer state", line), line
    assert not run.records


def test_a_state_for_no_stream_of_this_tap_is_refused(sandbox, tmp_path):
    typo = {"bookmarks": {"billing_session": {"replication_key_value": "2024-05-01"}}}
    run = run_tap(tmp_path, sandbox_config(sandbox), state=typo)
    assert run.exit_code == 1
    [line] = error_lines(run.stderr)
    assert "bookmarks for billing_session but none for this tap's streams" in line
    assert not run.records


def test_an_empty_state_object_is_a_first_run(sandbox, tmp_path):
    run = run_tap(tmp_path, sandbox_config(sandbox), state={})
    assert run.exit_code == 0, run.stderr
    assert set(run.ids) == {s["billingSessionId"] for s in sandbox.expected()}


def _run(args: list[str], tmp_path, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        **kwargs,
    )
    CAPTURED_OUTPUT.append(done.stdout + done.stderr)
    return done


def test_a_missing_state_file_means_no_state_yet(sandbox, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sandbox_config(sandbox)))
    SECRETS_SEEN.add(sandbox.client_secret)
    done = _run(["--config", str(config), "--state", "state.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("state file state.json does not exist yet: starting without") == 1
    # Every log line once (the note must not install a second handler).
    lines = [line.split("|", 1)[1] for line in done.stderr.splitlines() if "|" in line]
    assert len(lines) == len(set(lines))
    assert done.stdout.count('"type":"RECORD","stream":"billing_sessions"') == len(
        sandbox.expected()
    )


@pytest.mark.parametrize("kind", ["config", "state"])
def test_a_file_that_is_not_json_is_named_with_the_position(tmp_path, kind, sandbox):
    good = tmp_path / "config.json"
    good.write_text(json.dumps(sandbox_config(sandbox)))
    SECRETS_SEEN.add(sandbox.client_secret)
    bad = tmp_path / f"{kind}-bad.json"
    bad.write_text('{"start_date": "2024-01-01",\n  oops}')
    args = (
        ["--config", str(bad)] if kind == "config" else ["--config", str(good), "--state", str(bad)]
    )
    done = _run(args, tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert f"{kind} file {bad} is not valid JSON" in line
    assert "line 2, column 3" in line


def test_an_empty_state_file_is_called_empty(tmp_path, sandbox):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sandbox_config(sandbox)))
    SECRETS_SEEN.add(sandbox.client_secret)
    empty = tmp_path / "state.json"
    empty.write_text("\n")
    done = _run(["--config", str(config), "--state", str(empty)], tmp_path)
    assert done.returncode == 1
    [line] = error_lines(done.stderr)
    assert f"state file {empty} is empty" in line
    assert "pass {} for no state, or delete the file" in line


def test_the_connection_test_checks_each_app_in_two_requests_whatever_start_date(tmp_path):
    # Per app: its linked apps (include_linked_apps), then one one-row page.
    with Sandbox(seed=3, apps=3, sessions=50, max_page_size=50) as sb:
        config = sandbox_config(sb, start_date="2015-01-01T00:00:00Z", requests_per_minute=60)
        run = run_tap(tmp_path, config, args=("--test",))
        assert run.exit_code == 0, run.stderr
        assert sb.stats()["requests"] == 6
        assert sb.stats()["by_holder"] == dict.fromkeys(sb.bot_ids, 2)
        assert not run.messages, "a connection test writes no records and no state"
        assert not error_lines(run.stderr), run.stderr
        [line] = [line for line in run.stderr.splitlines() if "Connection test passed" in line]
        for bot in sb.bot_ids:
            assert bot in line

        sb.configure(client_secret="another-obviously-fake-secret-for-tests")
        failed = run_tap(tmp_path, config, args=("--test",))
        assert failed.exit_code == 1
        [line] = error_lines(failed.stderr)
        assert "HTTP 401" in line
        assert "client_id/client_secret" in line


def test_a_sync_gives_up_on_an_unreachable_host_after_retry_attempts_tries(tmp_path):
    run = run_tap(tmp_path, {**unreachable_config(), "retry_attempts": 4}, streams=SESSIONS)
    assert run.exit_code == 1
    [line] = error_lines(run.stderr)
    assert "after 4 tries" in line
    assert "check api_url" in line
    # The first (large-page) request's tries count toward the same four.
    assert run.stderr.count("Retrying in") == 3


def test_the_connection_test_gives_up_on_an_unreachable_host_after_three_tries(tmp_path):
    run = run_tap(tmp_path, unreachable_config(), args=("--test",))
    assert run.exit_code == 1
    [line] = error_lines(run.stderr)
    assert "after 3 tries" in line
    assert "ConnectionError" in line
    # A sync keeps its retry_attempts (8 by default); only the check is short.
    assert "try 4" not in run.stderr


def test_a_target_that_stops_reading_is_named_as_the_reason(sandbox, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sandbox_config(sandbox)))
    SECRETS_SEEN.add(sandbox.client_secret)
    tap = subprocess.Popen(
        [sys.executable, "-m", "tap_kore_billing", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tap.stdout is not None
    tap.stdout.readline()
    tap.stdout.close()  # what `| head -n 1` or a crashed target does
    stderr = tap.stderr.read() if tap.stderr else ""
    assert tap.wait(timeout=60) == 1
    CAPTURED_OUTPUT.append(stderr)
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    [line] = error_lines(stderr)
    assert "the downstream target stopped reading" in line


def test_every_bad_setting_is_reported_once_in_one_run(sandbox, tmp_path):
    run = run_tap(
        tmp_path,
        sandbox_config(
            sandbox, window_days="abc", page_size=0, api_timezone="Mars/Olympus", max_workers=9999
        ),
    )
    assert run.exit_code == 1
    lines = error_lines(run.stderr)
    for setting, words in (
        ("window_days", "is 'abc', not a whole number"),
        ("page_size", "is 0, below the minimum 1"),
        ("api_timezone", "not an IANA zone"),
        ("max_workers", "is 9999, above the maximum 1024"),
    ):
        about = [line for line in lines if f"`{setting}`" in line]
        assert len(about) == 1, (setting, lines)
        assert words in about[0]
    assert sum("Config validation failed" in line for line in run.stderr.splitlines()) == 1
    assert "WARNING" not in run.stderr


def test_a_misspelt_setting_is_named_with_the_setting_it_resembles(sandbox, tmp_path):
    config = sandbox_config(sandbox, end_date="2024-02-01T00:00:00Z")
    config["windows_days"] = 7
    run = run_tap(tmp_path, config, streams=SESSIONS)
    assert run.exit_code == 0, run.stderr[-2000:]
    [warning] = [line for line in run.stderr.splitlines() if "`windows_days`" in line]
    assert "WARNING" in warning
    assert "is ignored (did you mean `window_days`?)" in warning
    assert '"window_days": 30' in run.stderr
    # A fraction in the config file shows as the number it is, not as text.
    assert '"retry_initial_delay": 0.05' in run.stderr


HASHING_MAPS = {
    "billing_sessions": {
        "channelUserId": "sha256(config['hash_salt'] + channelUserId) if channelUserId else None"
    }
}


@pytest.mark.parametrize(
    ("expression", "map_config"),
    [
        ("sha256(config['hash_salt'] + channelUserId) if channelUserId else None", {}),
        (
            "sha256(config['hash_salt'] + channelUserId) if channelUserId else None",
            {"hash_salt": ""},
        ),
        ("sha256(config.get('hash_salt', '') + channelUserId) if channelUserId else None", {}),
    ],
)
def test_a_stream_map_without_its_salt_stops_before_any_record(
    sandbox, tmp_path, expression, map_config
):
    # What Meltano's hashed variant passes when KORE_HASH_SALT is not set.
    maps = {"billing_sessions": {"channelUserId": expression}}
    run = run_tap(tmp_path, sandbox_config(sandbox, stream_maps=maps, stream_map_config=map_config))
    assert run.exit_code == 1
    assert not run.records
    about = [line for line in error_lines(run.stderr) if "`stream_map_config`" in line]
    assert len(about) == 1, run.stderr[-2000:]
    assert "'hash_salt'" in about[0]
    assert "KORE_HASH_SALT" in about[0]
    assert "Traceback" not in run.stderr


def test_a_salted_stream_map_hashes_every_user_id(sandbox, tmp_path):
    run = run_tap(
        tmp_path,
        sandbox_config(
            sandbox, stream_maps=HASHING_MAPS, stream_map_config={"hash_salt": "test-salt"}
        ),
        streams=SESSIONS,
    )
    assert run.exit_code == 0, run.stderr[-2000:]
    raw = {r["raw"].get("channelUserId") for r in sandbox.published_expected()} - {None}
    hashed = {r["channelUserId"] for r in run.records} - {None}
    assert hashed
    assert not hashed & raw
    assert all(len(value) == 64 for value in hashed)


def test_retry_waits_are_what_the_settings_and_the_server_ask(tmp_path):
    with Sandbox(
        seed=5,
        apps=1,
        sessions=200,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 2, 1, tzinfo=UTC),
        max_page_size=50,
    ) as sb:
        config = sandbox_config(sb, retry_initial_delay=0.1, end_date="2024-02-01T00:00:00Z")
        sb.configure(error_rate=0.5, fault_seed=11)
        run = run_tap(tmp_path, config, streams=SESSIONS)
        assert run.exit_code == 0, run.stderr
        waits = [
            (float(m.group(1)), m.group(2), int(m.group(3)))
            for m in re.finditer(
                r"Retrying in ([\d.]+) s after (HTTP \d+) from \S+ \(try (\d+) of 8", run.stderr
            )
        ]
        assert waits, run.stderr
        for wait, _status, next_try in waits:
            base = 0.1 * 2 ** (next_try - 2)
            assert base <= wait <= base * 1.1 + 0.01, (wait, next_try)
        assert "Backing off" not in run.stderr
        assert "_post_once" not in run.stderr
        [summary] = [
            line for line in run.stderr.splitlines() if "Stream billing_sessions done" in line
        ]
        assert f"{len(waits)} retries" in summary


def test_settings_from_environment_variables_alone(sandbox, tmp_path):
    """`--config=ENV`: every value arrives as text, fractions and arrays included."""
    env = {
        "TAP_KORE_BILLING_API_URL": sandbox.url,
        "TAP_KORE_BILLING_CLIENT_ID": sandbox.client_id,
        "TAP_KORE_BILLING_CLIENT_SECRET": sandbox.client_secret,
        "TAP_KORE_BILLING_BOT_IDS": ",".join(sandbox.bot_ids),
        "TAP_KORE_BILLING_START_DATE": "2024-01-01",
        "TAP_KORE_BILLING_END_DATE": "2024-03-01T00:00:00Z",
        "TAP_KORE_BILLING_LOOKBACK_HOURS": "1.5",
        "TAP_KORE_BILLING_REQUEST_TIMEOUT": "2.5",
        "TAP_KORE_BILLING_RETRY_INITIAL_DELAY": "0.25",
        "TAP_KORE_BILLING_WINDOW_DAYS": "10",
        "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
    }
    SECRETS_SEEN.add(sandbox.client_secret)
    done = _run(["--config=ENV"], tmp_path, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "Settings in effect" in line]
    received = json.loads(line[line.index("{") :])
    assert received["lookback_hours"] == 1.5
    assert received["request_timeout"] == 2.5
    assert received["retry_initial_delay"] == 0.25
    assert received["window_days"] == 10
    assert received["bot_ids"] == sandbox.bot_ids
    assert received["client_secret"] == "(set)"
    ids = [
        json.loads(x)["record"]["billingSessionId"]
        for x in done.stdout.splitlines()
        if '"RECORD","stream":"billing_sessions"' in x
    ]
    assert len(ids) == len(set(ids)) > 0


def test_bad_values_in_environment_variables_name_their_settings(tmp_path):
    env = {
        "TAP_KORE_BILLING_CLIENT_ID": "cs-x",
        "TAP_KORE_BILLING_CLIENT_SECRET": "an-obviously-fake-secret-for-this-test-only",
        "TAP_KORE_BILLING_BOT_IDS": "st-a,st-b",
        "TAP_KORE_BILLING_START_DATE": "2024-01-01",
        "TAP_KORE_BILLING_WINDOW_DAYS": "abc",
        "TAP_KORE_BILLING_LOOKBACK_HOURS": "a day",
    }
    SECRETS_SEEN.add(env["TAP_KORE_BILLING_CLIENT_SECRET"])
    done = _run(["--config=ENV"], tmp_path, env={**os.environ, **env})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert any("`window_days` is 'abc', not a whole number" in line for line in lines), lines
    assert any("`lookback_hours` is 'a day', not a number" in line for line in lines), lines


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("LOOKBACK_HOURS", "nan", "setting `lookback_hours` is 'nan', not a number"),
        ("REQUEST_TIMEOUT", "inf", "setting `request_timeout` is 'inf', not a number"),
        ("WINDOW_DAYS", "inf", "setting `window_days` is 'inf', not a whole number"),
        ("START_DATE", "", "setting `start_date` is empty"),
    ],
)
def test_values_a_number_or_date_parser_takes_but_no_setting_means(
    tmp_path, variable, value, words
):
    env = {
        **os.environ,
        "TAP_KORE_BILLING_CLIENT_ID": "cs-x",
        "TAP_KORE_BILLING_CLIENT_SECRET": "an-obviously-fake-secret-for-this-test-only",
        "TAP_KORE_BILLING_BOT_IDS": "st-a",
        "TAP_KORE_BILLING_START_DATE": "2024-01-01",
        f"TAP_KORE_BILLING_{variable}": value,
    }
    SECRETS_SEEN.add(env["TAP_KORE_BILLING_CLIENT_SECRET"])
    done = _run(["--config=ENV"], tmp_path, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert words in error_lines(done.stderr)[0]


def test_a_misspelt_required_setting_still_gets_its_hint(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"start_dat": "2024-01-01", "auth_token": "x", "bot_ids": ["a"]}))
    done = _run(["--config", str(config)], tmp_path)
    assert done.returncode == 1
    assert (
        "`start_dat` is not a setting of this tap and is ignored (did you mean `start_date`?)"
        in (done.stderr)
    )
    assert "setting `start_date` is required" in error_lines(done.stderr)[0]


def test_discovery_works_with_a_bad_number_and_the_sync_names_it(tmp_path):
    # Meltano discovers before it syncs: the catalog must come out, the sync must name the value.
    env = {
        **os.environ,
        "TAP_KORE_BILLING_CLIENT_ID": "cs-x",
        "TAP_KORE_BILLING_CLIENT_SECRET": "an-obviously-fake-secret-for-this-test-only",
        "TAP_KORE_BILLING_BOT_IDS": "st-a",
        "TAP_KORE_BILLING_START_DATE": "2024-01-01",
        "TAP_KORE_BILLING_PAGE_SIZE": "abc",
    }
    SECRETS_SEEN.add(env["TAP_KORE_BILLING_CLIENT_SECRET"])
    discovered = _run(["--config=ENV", "--discover"], tmp_path, env=env)
    assert discovered.returncode == 0, discovered.stderr
    assert {s["tap_stream_id"] for s in json.loads(discovered.stdout)["streams"]} == {
        "billing_sessions",
        "billing_usage_summary",
        "apps",
        "app_links",
    }
    synced = _run(["--config=ENV"], tmp_path, env=env)
    assert synced.returncode == 1
    assert "Traceback" not in synced.stderr
    assert "setting `page_size` is 'abc', not a whole number" in error_lines(synced.stderr)[0]

"""Meltano shows each setting's default and reads it as the kind meltano.yml declares, from the
environment and from `meltano config set`; the tap gets the value with its type.

`meltano config list` runs in this repository's project (it writes nothing). Everything else
runs in a throwaway project in tmp_path: this repository's tap-kore-billing extractor (the
settings `make definition` writes) without pip_url, its executable this checkout's console
script, so `meltano config set` writes to a temporary meltano.yml and nothing is installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, SECRETS_SEEN, meltano_in, run_meltano

from tap_kore_billing.run.settings import SETTINGS_SCHEMA
from tap_kore_billing.sandbox import Sandbox

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
# One value of each kind, as a user types it after `meltano config set tap-kore-billing NAME`
# or in TAP_KORE_BILLING_<NAME>; the app IDs are filled in from the emulator.
TYPED_BY_USER = {
    "window_days": "7",  # integer
    "include_linked_apps": "false",  # boolean
    "summary_granularity": "hour",  # options
    "lookback_hours": "1.5",  # a fraction: text
    "start_date": START.isoformat(),  # a date: text
}
# What the tap must receive for them: typed by Meltano, or text the tap types itself.
IN_THE_CONFIG_FILE = {
    "window_days": 7,
    "include_linked_apps": False,
    "summary_granularity": "hour",
    "lookback_hours": "1.5",
    "start_date": "2024-01-01T00:00:00+00:00",
    "max_workers": 256,  # a default Meltano passes, typed
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    extractor = yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["extractors"][0]
    del extractor["pip_url"]
    extractor["executable"] = str(Path(sys.executable).parent / "tap-kore-billing")
    layout = {"project_id": "kinds-test", "send_anonymous_usage_stats": False}
    layout["plugins"] = {"extractors": [extractor]}
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(layout, sort_keys=False))
    return tmp_path


@pytest.fixture
def linked():
    """Two apps, the first routing to the second: include_linked_apps decides what is read."""
    end = START + timedelta(days=20)
    with Sandbox(seed=41, apps=2, sessions=120, start=START, end=end, links="1:2") as sb:
        SECRETS_SEEN.update((sb.client_secret, sb.planted_secret))
        yield sb


def meltano(
    project: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`meltano ARGS` in the throwaway project, with no TAP_KORE_BILLING_* of the caller's."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_KORE_BILLING_", "MELTANO_"))
    }
    environment["MELTANO_DATABASE_URI"] = f"sqlite:///{project / 'meltano.db'}"
    return meltano_in(project, list(args), {**environment, **(env or {})}, check=check, timeout=120)


def connection(sb: Sandbox) -> dict[str, str]:
    """Where the emulator is, and its fast settings, as variables (the same in every test)."""
    return {
        "TAP_KORE_BILLING_API_URL": sb.url,
        "TAP_KORE_BILLING_CLIENT_ID": sb.client_id,
        "TAP_KORE_BILLING_END_DATE": (START + timedelta(days=20)).isoformat(),
        "TAP_KORE_BILLING_REQUESTS_PER_MINUTE": "100000",
        "TAP_KORE_BILLING_SUMMARY_POLL_SECONDS": "0.05",
    }


def settings_in_effect(stderr: str) -> dict:
    """The settings the tap logs once it has read them (its typed values), in its last start
    (Meltano starts it twice: discovery, then the sync)."""
    line = [line for line in stderr.splitlines() if "Settings in effect" in line][-1]
    text = line[line.index("Settings in effect") :].replace('\\"', '"')
    return dict(json.loads(text[text.index("{") : text.rindex("}") + 1]))


def test_meltano_config_list_shows_every_default(tmp_path):
    done = run_meltano(["config", "list", "--all", "tap-kore-billing"], tmp_path)
    shown = dict(re.findall(r"^(\w+) \[env: .*current value: (.*) \(default\)$", done.stdout, re.M))
    assert shown["window_days"] == "30"
    assert shown["page_size"] == "1000"
    assert shown["api_url"] == "'https://platform.kore.ai'"
    assert shown["include_linked_apps"] == "True"
    assert shown["api_scope"] == "'bot'"
    assert shown["summary_poll_seconds"] == "1.0"
    # Every default the tap declares, as Meltano prints it.
    defaults = {n: s["default"] for n, s in SETTINGS_SCHEMA["properties"].items() if "default" in s}
    assert {name: shown.get(name) for name in defaults} == {
        name: repr(value) for name, value in defaults.items()
    }


@pytest.mark.parametrize("source", ["environment", "config set"])
def test_each_kind_reaches_the_tap_with_its_type(project, linked, source):
    parent, child = (app["botId"] for app in sorted(linked.apps(), key=lambda a: a["index"]))
    typed = {**TYPED_BY_USER, "bot_ids": json.dumps([parent])}
    env = connection(linked)
    if source == "environment":
        env.update({f"TAP_KORE_BILLING_{name.upper()}": value for name, value in typed.items()})
        env["TAP_KORE_BILLING_CLIENT_SECRET"] = linked.client_secret
    else:
        for name, value in {**typed, "client_secret": linked.client_secret}.items():
            meltano(project, "config", "set", "tap-kore-billing", name, value)
        [extractor] = yaml.safe_load((project / "meltano.yml").read_text())["plugins"]["extractors"]
        wanted = {name: IN_THE_CONFIG_FILE[name] for name in TYPED_BY_USER}
        assert extractor["config"] == {**wanted, "bot_ids": [parent]}
        # The secret went to .env, not to the versioned file.
        assert "TAP_KORE_BILLING_CLIENT_SECRET=" in (project / ".env").read_text()

    # The config file Meltano writes for the tap (with a stand-in secret: it is printed).
    shown = {**env, "TAP_KORE_BILLING_CLIENT_SECRET": "stand-in"}
    dumped = meltano(project, "invoke", "--dump=config", "tap-kore-billing", env=shown)
    config = json.loads(dumped.stdout[dumped.stdout.index("{") :])
    for name, value in {**IN_THE_CONFIG_FILE, "bot_ids": [parent]}.items():
        assert (name, config[name], type(config[name])) == (name, value, type(value))

    run = meltano(project, "invoke", "tap-kore-billing", env=env)
    received = settings_in_effect(run.stderr)
    assert received["window_days"] == 7
    assert received["include_linked_apps"] is False
    assert received["bot_ids"] == [parent]
    assert received["summary_granularity"] == "hour"
    assert received["lookback_hours"] == 1.5
    assert received["client_secret"] == "(set)"
    messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    read = {
        m["record"]["botId"]
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == "billing_sessions"
    }
    assert read == {parent}, child  # include_linked_apps false: the linked app is not read


def test_bad_values_are_named_by_meltano_or_by_the_tap(project, linked):
    env = {**connection(linked), "TAP_KORE_BILLING_CLIENT_SECRET": linked.client_secret}
    env["TAP_KORE_BILLING_BOT_IDS"] = json.dumps(linked.bot_ids)
    # A choice Meltano knows the options of: refused before anything runs, naming the setting.
    refused = meltano(
        project, "config", "set", "tap-kore-billing", "api_scope", "adimn", check=False
    )
    assert refused.returncode != 0
    assert "'adimn' is not a valid choice for 'api_scope'" in refused.stderr
    assert "adimn" not in (project / "meltano.yml").read_text()
    printed = meltano(
        project,
        "config",
        "print",
        "tap-kore-billing",
        env={**env, "TAP_KORE_BILLING_SUMMARY_GRANULARITY": "weekly"},
        check=False,
    )
    assert printed.returncode != 0
    assert "'weekly' is not a valid choice for 'summary_granularity'" in printed.stderr

    # Dates reach the tap as written (Meltano's date kind would read 2024-13-01 as 13 January),
    # and a fraction written into meltano.yml for a whole number reaches it as a number: the
    # tap names both, in one line each, with no traceback.
    layout = yaml.safe_load((project / "meltano.yml").read_text())
    layout["plugins"]["extractors"][0]["config"] = {"window_days": 1.5, "page_size": 200.0}
    (project / "meltano.yml").write_text(yaml.safe_dump(layout, sort_keys=False))
    run = meltano(
        project,
        "invoke",
        "tap-kore-billing",
        env={**env, "TAP_KORE_BILLING_START_DATE": "2024-13-01"},
        check=False,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "setting `start_date` is '2024-13-01', not an ISO 8601 date" in run.stderr
    assert "setting `window_days` is 1.5, not a whole number" in run.stderr
    assert "setting `page_size`" not in run.stderr  # 200.0 is a whole number

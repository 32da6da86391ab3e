"""The shard plan (KORE_BILLING_SHARDS): every app in exactly one shard, the same shard on every
machine, the admin scope's one quota divided, and a bad setting named in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tap_kore_billing.orchestration.settings import (
    CodeLocationSettingError,
    CodeLocationSettings,
)
from tap_kore_billing.orchestration.shards import (
    ShardSettingError,
    parse_shards,
    shard_of,
    shard_settings,
)

APPS = [f"st-{n:08x}-0000-4000-8000-{n:012x}" for n in range(40)]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_hashed_shards_hold_every_app_once(count):
    plan = parse_shards(str(count))
    shards = [plan.apps(i, APPS) for i in range(count)]
    if count == 1:
        assert shards == [None]  # one shard: the settings' apps, unchanged
        return
    listed = [app for apps in shards for app in apps or []]
    assert sorted(listed) == sorted(APPS)
    assert all(shards), "40 apps leave no shard of 7 or fewer empty"


def test_an_apps_shard_is_the_same_in_another_process():
    """Not Python's hash(), which is salted per process."""
    code = (
        "import json, sys; from tap_kore_billing.orchestration.shards import shard_of; "
        "print(json.dumps([shard_of(a, 5) for a in json.loads(sys.argv[1])]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(APPS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(other.stdout) == [shard_of(app, 5) for app in APPS]


def test_explicit_lists_are_the_shards():
    plan = parse_shards(json.dumps([APPS[:3], APPS[3:4]]))
    assert plan.count == 2
    assert plan.names == ["shard_1", "shard_2"]
    assert plan.apps(1, APPS) == APPS[3:4]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("0", "give 1 to 64 shards"),
        ("65", "give 1 to 64 shards"),
        ("two", "a JSON list of non-empty lists"),
        ("[[]]", "a JSON list of non-empty lists"),
        ('[["st-a"], ["st-a"]]', "st-a is in two shards"),
    ],
)
def test_a_bad_setting_is_named(text, said):
    with pytest.raises(ShardSettingError) as caught:
        parse_shards(text)
    assert str(caught.value).startswith("KORE_BILLING_SHARDS")
    assert said in str(caught.value)


def test_the_admin_quota_is_divided_and_linked_apps_are_not_followed():
    plan = parse_shards("3")
    config = {
        "api_scope": "admin",
        "bot_ids": APPS,
        "requests_per_minute": 60,
        "requests_per_hour": 1800,
    }
    settings = [shard_settings(plan, i, config) for i in range(3)]
    for one in settings:
        assert one["TAP_KORE_BILLING_REQUESTS_PER_MINUTE"] == "20"
        assert one["TAP_KORE_BILLING_REQUESTS_PER_HOUR"] == "600"
        assert one["TAP_KORE_BILLING_INCLUDE_LINKED_APPS"] == "false"
    apps = [app for one in settings for app in json.loads(one["TAP_KORE_BILLING_BOT_IDS"])]
    assert sorted(apps) == sorted(APPS)
    # In bot scope each app has its own quota: nothing to divide. Nor when the shards run one
    # after another (DuckDB): each has the whole quota while it runs.
    bot = shard_settings(plan, 0, {**config, "api_scope": "bot"})
    assert "TAP_KORE_BILLING_REQUESTS_PER_MINUTE" not in bot
    one_by_one = shard_settings(plan, 0, config, concurrent=False)
    assert "TAP_KORE_BILLING_REQUESTS_PER_MINUTE" not in one_by_one
    # Lists are shards too: two lists share the admin quota.
    lists = parse_shards(json.dumps([APPS[:20], APPS[20:]]))
    assert shard_settings(lists, 1, config)["TAP_KORE_BILLING_REQUESTS_PER_MINUTE"] == "30"


def test_hashing_needs_the_apps():
    with pytest.raises(ShardSettingError, match="bot_ids is empty"):
        shard_settings(parse_shards("2"), 0, {"api_scope": "admin", "bot_ids": []})


def test_the_code_locations_settings_say_what_is_wrong(tmp_path):
    (tmp_path / "meltano.yml").write_text("project_id: x\n")
    base = {"MELTANO_PROJECT_ROOT": str(tmp_path)}
    local = CodeLocationSettings.from_environment(base)
    assert local.local
    assert local.shards.count == 2
    assert local.dbt_utility == "dbt-duckdb"
    assert local.one_writer
    prod = CodeLocationSettings.from_environment(
        {**base, "MELTANO_ENVIRONMENT": "prod", "KORE_BILLING_LOADER": "target-postgres"}
    )
    assert (prod.local, prod.shards.count, prod.one_writer) == (False, 1, False)
    assert prod.meltano_variables() == {}
    for bad, said in [
        ({"KORE_BILLING_LOADER": "target-csv"}, "KORE_BILLING_LOADER='target-csv'"),
        ({"KORE_BILLING_SCHEDULE": "hourly"}, "KORE_BILLING_SCHEDULE='hourly'"),
        ({"KORE_BILLING_SHARDS": "-1"}, "KORE_BILLING_SHARDS"),
        ({"MELTANO_PROJECT_ROOT": str(tmp_path / "nowhere")}, "no meltano.yml in"),
    ]:
        with pytest.raises(CodeLocationSettingError, match="^" + said.replace("(", r"\(")):
            CodeLocationSettings.from_environment({**base, **bad})

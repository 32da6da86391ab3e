"""`--about` is the settings contract that Meltano, the docs and other tools depend on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tap_kore_billing.run.settings import OWN_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "api_url": ("string", "https://platform.kore.ai"),
    "client_id": ("string", None),
    "client_secret": ("string", None),
    "auth_token": ("string", None),
    "api_scope": ("string", "bot"),
    "bot_ids": ("array", None),
    "channels": ("array", None),
    "start_date": ("string", None),
    "end_date": ("string", None),
    "window_days": ("integer", 30),
    "page_size": ("integer", 1000),
    "lookback_hours": ("number", 24),
    "requests_per_minute": ("integer", 60),
    "requests_per_hour": ("integer", 1800),
    "api_timezone": ("string", "UTC"),
}


def about(fmt: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", "--about", f"--format={fmt}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_settings_have_the_contracted_names_types_and_defaults():
    info = json.loads(about("json"))
    settings = info["settings"]["properties"]
    for name, (json_type, default) in CONTRACT.items():
        assert name in settings, name
        assert json_type in settings[name]["type"], name
        assert settings[name].get("default") == default, name
    assert info["settings"]["required"] == ["start_date"]
    assert settings["api_scope"]["enum"] == ["bot", "admin"]
    assert (settings["window_days"]["minimum"], settings["window_days"]["maximum"]) == (1, 90)
    assert {"discover", "catalog", "state", "about", "stream-maps", "test", "batch"} <= set(
        info["capabilities"]
    )


def test_secrets_are_marked_in_json_and_markdown():
    settings = json.loads(about("json"))["settings"]["properties"]
    secret = {name for name, schema in settings.items() if schema.get("secret")}
    assert secret == {"client_secret", "auth_token"}
    rows = {
        line.split("|")[1].strip(): line for line in about("markdown").splitlines() if "|" in line
    }
    for name in secret:
        assert "Secret." in rows[name]


def test_readme_settings_table_matches_about():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_settings.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_readme_table_holds_our_settings_and_names_the_sdks_apart():
    page = (ROOT / "docs" / "settings.md").read_text()
    block = page.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    rows = {
        line.split("|")[1].strip(): line for line in block.splitlines() if line.startswith("| ")
    }
    settings = json.loads(about("json"))["settings"]["properties"]
    ours = [name for name in settings if name in OWN_SETTINGS]
    assert list(rows)[1:] == ours  # after the header row
    assert "| integer | 30 |" in rows["window_days"]
    assert "| options: bot, admin | bot |" in rows["api_scope"]
    [generic] = [line for line in block.splitlines() if "generic settings" in line]
    assert all(f"`{name}`" in generic for name in settings if name not in OWN_SETTINGS)
    assert "https://sdk.meltano.com/en/latest/" in generic


def test_meltano_yml_declares_every_setting_and_marks_secrets():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    extractor = project["plugins"]["extractors"][0]
    declared = {s["name"]: s for s in extractor["settings"]}
    settings = json.loads(about("json"))["settings"]["properties"]
    own = {name for name in settings if not name.startswith(("stream_map", "faker", "flatten"))}
    own -= {"batch_config"}
    assert set(declared) == own
    assert {n for n, s in declared.items() if s.get("sensitive")} == {"client_secret", "auth_token"}
    assert extractor["namespace"] == "kore_billing"
    assert extractor["pip_url"] == "-e ."


def definition() -> dict:
    return yaml.safe_load((ROOT / "meltano" / "tap-kore-billing.yml").read_text())


def test_plugin_definition_and_meltano_yml_settings_are_generated_from_about():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin_definition.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_plugin_definition_declares_every_setting_of_about_with_its_secrets():
    info = json.loads(about("json"))
    settings = info["settings"]["properties"]
    declared = {s["name"]: s for s in definition()["settings"]}
    assert list(declared) == list(settings), "every setting, in --about's order"
    for name, schema in settings.items():
        assert declared[name]["label"] == schema["title"], name
        assert declared[name]["description"] == schema["description"], name
        assert declared[name].get("sensitive", False) == schema.get("secret", False), name
    assert set(definition()["capabilities"]) == set(info["capabilities"])
    assert "structured-logging" in definition()["capabilities"]


def test_plugin_definition_agrees_with_the_sample_projects_extractor():
    """The definition and meltano.yml declare our settings alike, and the same groups."""
    extractor = yaml.safe_load((ROOT / "meltano.yml").read_text())["plugins"]["extractors"][0]
    shipped = definition()
    sample = {s["name"]: s for s in extractor["settings"]}
    declared = {s["name"]: s for s in shipped["settings"]}
    for name, setting in sample.items():
        assert declared[name] == setting, name
    assert set(declared) - set(sample) <= {
        name for name in declared if name.startswith(("stream_map", "faker", "flatten", "batch"))
    }
    for key in ("namespace", "executable", "settings_group_validation"):
        assert shipped[key] == extractor[key], key
    assert set(extractor["capabilities"]) <= set(shipped["capabilities"])
    # Not on PyPI: the checkout beside the user's project, wherever Meltano is started from.
    assert shipped["pip_url"] == "-e ${MELTANO_PROJECT_ROOT}/../tap-kore-billing"


def test_plugin_definition_declares_the_kinds_meltano_reads_and_the_defaults():
    """What `meltano config list` shows and `meltano config set` stores (see
    tests/pipeline/test_meltano_kinds.py for Meltano reading them)."""
    declared = {s["name"]: s for s in definition()["settings"]}
    kinds = {name: (s["kind"], s.get("value")) for name, s in declared.items()}
    assert kinds["window_days"] == ("integer", 30)
    assert kinds["page_size"] == ("integer", 1000)
    assert kinds["api_url"] == ("string", "https://platform.kore.ai")
    assert kinds["include_linked_apps"] == ("boolean", True)
    assert kinds["bot_ids"] == kinds["channels"] == ("array", None)
    assert kinds["stream_maps"] == ("object", None)
    for name, choices in (("api_scope", ["bot", "admin"]), ("summary_granularity", None)):
        assert declared[name]["kind"] == "options"
        values = [option["value"] for option in declared[name]["options"]]
        assert values == (choices or ["day", "hour", "month"])
    # Text that the tap types: Meltano's decimal and date kinds break these (see the header).
    for name in ("lookback_hours", "request_timeout", "start_date", "end_date"):
        assert declared[name]["kind"] == "string", name
    assert {n for n, s in declared.items() if s.get("sensitive")} == {"client_secret", "auth_token"}

"""Refresh (or, with --check, verify) the settings table of docs/settings.md (the README links
it) from `--about`: the tap's own settings with the kind Meltano reads each as (the same
`declaration()` that writes meltano.yml and the plugin definition), then the SDK's generic
settings by name only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from plugin_definition import about, declaration

from tap_kore_billing.run.settings import OWN_SETTINGS

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
SDK_DOCS = "https://sdk.meltano.com/en/latest/"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def row(name: str, schema: dict[str, Any], required: bool) -> str:
    declared = declaration(name, schema)
    kind = declared["kind"]
    if kind == "options":
        kind += ": " + ", ".join(str(option["value"]) for option in declared["options"])
    elif "number" in schema.get("type", []):
        kind += " (a number)"
    elif schema.get("format") == "date-time":
        kind += " (a date)"
    elif declared.get("sensitive"):
        kind += ", sensitive"
    default = declared.get("value")
    shown = "" if default is None else str(default).lower() if default is True else str(default)
    return (
        f"| {name} | {'yes' if required else ''} | {kind} | {cell(shown)} "
        f"| {cell(declared.get('description', ''))} |"
    )


def settings_block() -> str:
    settings = about()["settings"]
    required = set(settings.get("required", []))
    own = [name for name in settings["properties"] if name in OWN_SETTINGS]
    generic = [name for name in settings["properties"] if name not in OWN_SETTINGS]
    lines = [
        "| Setting | Required | Meltano kind | Default | Description |",
        "|:--------|:--------:|:-------------|:--------|:------------|",
        *(row(name, settings["properties"][name], name in required) for name in own),
        "",
        "Every singer-sdk tap also takes the SDK's generic settings, for stream maps, schema "
        "flattening and batch files: "
        + ", ".join(f"`{name}`" for name in generic)
        + f". See the [Meltano Singer SDK documentation]({SDK_DOCS}).",
    ]
    return "\n".join(lines)


def render(page: str, block: str) -> str:
    before, rest = page.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{block}\n{END}{after}"


def main() -> int:
    current = SETTINGS_PAGE.read_text()
    wanted = render(current, settings_block())
    if "--check" in sys.argv:
        if current != wanted:
            print(
                "docs/settings.md: the settings table is stale: run `make readme`", file=sys.stderr
            )
            return 1
        return 0
    SETTINGS_PAGE.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

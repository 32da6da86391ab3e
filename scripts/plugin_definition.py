"""Write (or, with --check, verify) the tap's settings as Meltano declares them, in two places:
meltano/tap-kore-billing.yml, the plugin definition that other projects add with
`meltano add --plugin-type extractor tap-kore-billing --from-ref`, and the tap-kore-billing
extractor of this repository's meltano.yml (the lines between `# settings:start` and
`# settings:end`; the rest of meltano.yml is left as it is).

Both come from `declaration()`: everything a setting says (name, label, description, default,
secret, choices) comes from `--about`, so neither can drift from the tap; the kind Meltano
reads it as is decided here, from the setting's JSON type, for the reasons in `KIND_NOTES`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from tap_kore_billing.run.settings import OWN_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "meltano" / "tap-kore-billing.yml"
MELTANO_YML = ROOT / "meltano.yml"
START, END = "# settings:start", "# settings:end"
INDENT = "    "  # the extractor's keys in meltano.yml
# Either credential pair, and the one setting every run needs (as in meltano.yml).
SETTINGS_GROUPS = [["client_id", "client_secret", "start_date"], ["auth_token", "start_date"]]
# JSON types Meltano 4.4 reads as its own kind without loss; anything else stays text.
TYPED_KINDS = ("integer", "boolean", "array", "object")
HEADER = """\
# tap-kore-billing as a Meltano plugin definition, for a Meltano project of your own
# (docs/own-projects.md, "In your own Meltano and dbt projects"). With this repository checked
# out beside the project:
#
#   meltano add --plugin-type extractor tap-kore-billing \\
#     --from-ref ../tap-kore-billing/meltano/tap-kore-billing.yml
#
# (Meltano 4.4.1 reads `meltano add extractor NAME` as two plugins, a utility `extractor` and
# NAME, and adds this definition twice: name the type with --plugin-type.)
#
# Generated from `tap-kore-billing --about` by `make definition`; a test fails when it is stale.
# - pip_url: the checkout beside the project, editable (the package is not on PyPI). From a git
#   host instead: git+https://<host>/<path>/tap-kore-billing.git@<tag>, then `meltano install`.
# - namespace kore_billing: `meltano add --from-ref` drops a `load_schema` key (and `config`),
#   and load_schema defaults to the namespace. So a loader configured with
#   `default_target_schema: $MELTANO_EXTRACT__LOAD_SCHEMA` writes the tables to the schema
#   kore_billing, where the dbt package (transform/) looks by default.
"""


def about() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def kind(schema: dict[str, Any]) -> str:
    """The kind Meltano reads a setting as (kind_notes() says why some stay `string`)."""
    if schema.get("enum"):
        return "options"
    types = [name for name in schema.get("type", ["string"]) if name != "null"]
    return types[0] if types and types[0] in TYPED_KINDS else "string"


def declaration(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One setting as Meltano declares it, keys in the order Meltano writes them."""
    declared: dict[str, Any] = {"name": name, "kind": kind(schema)}
    if "default" in schema:
        declared["value"] = schema["default"]
    declared["label"] = schema.get("title", name)
    if schema.get("description"):
        declared["description"] = schema["description"]
    if declared["kind"] == "options":
        declared["options"] = [{"label": str(v), "value": v} for v in schema["enum"]]
    if schema.get("secret"):
        declared["sensitive"] = True
    return declared


def declarations(info: dict[str, Any], *, own_only: bool = False) -> list[dict[str, Any]]:
    return [
        declaration(name, schema)
        for name, schema in info["settings"]["properties"].items()
        if name in OWN_SETTINGS or not own_only
    ]


def kind_notes(info: dict[str, Any]) -> list[str]:
    """Why each setting has its kind, for the comments of both files, wrapped (as observed
    with Meltano 4.4.1; tests/pipeline/test_meltano_kinds.py checks the declared kinds)."""
    own = [(n, s) for n, s in info["settings"]["properties"].items() if n in OWN_SETTINGS]
    numbers = ", ".join(n for n, s in own if "number" in s.get("type", []))
    dates = ", ".join(n for n, s in own if s.get("format") == "date-time")
    secrets = ", ".join(n for n, s in own if s.get("secret"))
    notes = [
        "Kinds: Meltano types each value by its kind, whether it comes from meltano.yml, "
        "`meltano config set` or a TAP_KORE_BILLING_<NAME> variable (Meltano 4.4.1).",
        '- integer, array (JSON: \'["st-a","st-b"]\'), object, options: a value Meltano '
        "cannot read as that kind stops it before the tap starts, with a traceback (under "
        "`meltano invoke`, headed by an unrelated 'No such file' error).",
        "- boolean: Meltano reads true, 1, yes and on (any case) as true, any other word as false.",
        f"- `string` for fractions ({numbers}): Meltano's `decimal` kind stops with a "
        "traceback on a value from the environment (it cannot write a Decimal to the tap's "
        "config file). The tap reads and checks the number.",
        f"- `string` for dates ({dates}): Meltano's `date_iso8601` kind rewrites what is not "
        "strictly ISO 8601 without a word (2024-13-01 becomes 2024-01-13, 01/02/2024 "
        "2 January). The tap names a bad date instead.",
        f"- `string` with `sensitive: true` for secrets ({secrets}): Meltano 4.4 reads "
        "`kind: password` as a deprecated spelling of that, and rewrites it.",
    ]
    return [
        line
        for note in notes
        for line in textwrap.wrap(note, width=92, subsequent_indent="  " * note.startswith("-"))
    ]


def definition(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": info["name"],
        "namespace": "kore_billing",
        "label": "Kore.ai Billing",
        "description": info["description"],
        "pip_url": "-e ${MELTANO_PROJECT_ROOT}/../tap-kore-billing",
        "executable": info["name"],
        "capabilities": info["capabilities"],
        "settings_group_validation": SETTINGS_GROUPS,
        "settings": declarations(info),
    }


def render_definition(info: dict[str, Any]) -> str:
    body = yaml.safe_dump(definition(info), sort_keys=False, width=100, allow_unicode=True)
    notes = "".join(f"# {line}\n" for line in kind_notes(info))
    return HEADER + notes + body


def render_meltano_block(info: dict[str, Any]) -> str:
    """The extractor's settings in meltano.yml, written by ruamel.yaml as Meltano writes the
    file (unwrapped, its quoting), so that `meltano config set` rewrites none of these lines."""
    writer = YAML()
    writer.width = sys.maxsize
    body = io.StringIO()
    writer.dump({"settings": declarations(info, own_only=True)}, body)
    lines = [
        f"{START} (from `tap-kore-billing --about`: edit the tap, then `make definition`)",
        *(f"# {line}" for line in kind_notes(info)),
        *body.getvalue().splitlines(),
        END,
    ]
    return "".join(f"{INDENT}{line}\n" for line in lines)


def splice(text: str, block: str) -> str:
    """`text` (meltano.yml) with the lines from START to END replaced by `block`."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(START)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise SystemExit(f"meltano.yml needs one `{START}` line and, after it, one `{END}` line")
    return "".join([*lines[: starts[0]], block, *lines[ends[0] + 1 :]])


def main() -> int:
    info = about()
    wanted = {
        DEFINITION: render_definition(info),
        MELTANO_YML: splice(MELTANO_YML.read_text(), render_meltano_block(info)),
    }
    if "--check" in sys.argv:
        stale = [
            path.relative_to(ROOT).as_posix()
            for path, text in wanted.items()
            if (path.read_text() if path.exists() else "") != text
        ]
        for name in stale:
            print(f"{name}: the settings are stale: run `make definition`", file=sys.stderr)
        return 1 if stale else 0
    DEFINITION.parent.mkdir(exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

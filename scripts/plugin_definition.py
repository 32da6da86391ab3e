"""Write (or, with --check, verify) meltano/tap-kore-billing.yml, the Meltano plugin definition
that other projects add with `meltano add --plugin-type extractor tap-kore-billing --from-ref`.

Everything a setting says (name, label, description, secret) comes from `--about`, so the file
cannot drift from the tap; what `--about` cannot say (namespace, pip_url, the settings groups,
the kinds) is decided here, each with its reason in the file's header.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "meltano" / "tap-kore-billing.yml"
# The SDK's own settings keep their JSON type as kind (Meltano parses objects and booleans from
# the shell); the tap's settings are all `kind: string`, see the header.
SDK_SETTINGS = ("stream_map", "faker_config", "flattening_", "batch_config")
KINDS = {"object": "object", "boolean": "boolean", "integer": "integer", "string": "string"}
# Either credential pair, and the one setting every run needs (as in meltano.yml).
SETTINGS_GROUPS = [["client_id", "client_secret", "start_date"], ["auth_token", "start_date"]]
HEADER = """\
# tap-kore-billing as a Meltano plugin definition, for a Meltano project of your own (README,
# "In your own Meltano and dbt projects"). With this repository checked out beside the project:
#
#   meltano add --plugin-type extractor tap-kore-billing \
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
# - The tap's numbers, lists, dates and choices are `kind: string`: the tap types and checks
#   them and names a bad value, where Meltano would stop with a traceback (it cannot serialise
#   a decimal from the shell) or read a date like 2024-13-01 as 13 January.
"""


def about() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tap_kore_billing", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    types = [kind for kind in schema.get("type", ["string"]) if kind != "null"]
    kind = KINDS.get(types[0], "string") if name.startswith(SDK_SETTINGS) else "string"
    declared: dict[str, Any] = {"name": name, "kind": kind, "label": schema.get("title", name)}
    if schema.get("description"):
        declared["description"] = schema["description"]
    if schema.get("secret"):
        declared["sensitive"] = True
    return declared


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
        "settings": [setting(n, s) for n, s in info["settings"]["properties"].items()],
    }


def render(info: dict[str, Any]) -> str:
    body = yaml.safe_dump(definition(info), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def main() -> int:
    wanted = render(about())
    if "--check" in sys.argv:
        current = DEFINITION.read_text() if DEFINITION.exists() else ""
        if current != wanted:
            print(
                f"{DEFINITION.relative_to(ROOT)} is stale: run `make definition`", file=sys.stderr
            )
            return 1
        return 0
    DEFINITION.parent.mkdir(exist_ok=True)
    DEFINITION.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

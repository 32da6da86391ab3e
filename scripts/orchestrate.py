"""`make orchestrate`: the Dagster UI with the code location, in the local default the demo
account's emulator into output/orchestrate/kore_billing.duckdb (or what the environment sets:
MELTANO_ENVIRONMENT, KORE_BILLING_LOADER, KORE_BILLING_SHARDS; docs/orchestration.md).

Installs the Meltano plugins the code location runs, makes DAGSTER_HOME (default
output/orchestrate/dagster_home) with a dagster.yaml whose pools allow one step each (a shard
never runs twice at once), prints the UI's address and runs `dagster dev` until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tap_kore_billing.orchestration.meltano_process import MeltanoRunFailedError, install_missing
from tap_kore_billing.orchestration.settings import CodeLocationSettings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INSTANCE = (
    "concurrency:\n  pools:\n    default_limit: 1  # each shard's pool: one run of it at a time\n"
)


def main() -> int:
    try:
        settings = CodeLocationSettings.from_environment()
    except ValueError as exc:
        sys.exit(f"make orchestrate: {exc}")
    plugins = [
        ("extractors", "tap-kore-billing"),
        ("loaders", settings.loader),
        ("utilities", settings.dbt_utility),
    ]
    try:
        install_missing(ROOT, os.environ, plugins)  # `meltano install` refreshes them
    except MeltanoRunFailedError as exc:
        sys.exit(f"make orchestrate: {exc}")
    home = Path(os.environ.get("DAGSTER_HOME") or ROOT / "output" / "orchestrate" / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(INSTANCE)
    port = os.environ.get("ORCHESTRATE_PORT") or "3000"
    where = "the demo account's emulator" if settings.local else f"Meltano's {settings.environment}"
    print(
        f"Dagster UI: http://127.0.0.1:{port} (Ctrl-C stops it). Code location kore_billing: "
        f"{where} into {settings.loader} in {settings.shards.count} shards; "
        f"runs and checks in {home}",
        flush=True,
    )
    command = [str(BIN / "dagster"), "dev", "--host", "127.0.0.1", "--port", port]
    os.chdir(ROOT)
    os.execve(command[0], command, {**os.environ, "DAGSTER_HOME": str(home)})  # noqa: S606
    return 0


if __name__ == "__main__":
    sys.exit(main())

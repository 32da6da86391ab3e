"""`kore-billing-dbt ARGS`: dbt as the code location runs it, through Meltano's dbt utility for
the loader (`meltano --environment=E invoke dbt-<warehouse> ARGS`), so Dagster builds with the
dbt version, profile and settings that `meltano run` uses, and dbt-core stays out of Dagster's
environment (its pins do not resolve beside the tap's lock). dagster-dbt runs it as its dbt
executable; anyone may run it to see what Dagster's dbt sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tap_kore_billing.orchestration.meltano_process import meltano_executable
from tap_kore_billing.orchestration.settings import CodeLocationSettings


def dbt_command(settings: CodeLocationSettings, args: list[str]) -> list[str]:
    return [
        meltano_executable(),
        "--log-level=warning",  # Meltano's own lines would sit between dbt's JSON lines
        f"--environment={settings.environment}",
        "invoke",
        settings.dbt_utility,
        *args,
    ]


def run_dbt(
    settings: CodeLocationSettings, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """dbt ARGS through Meltano, its output captured (for queries such as `dbt show`)."""
    return subprocess.run(  # noqa: S603 - our own command line, no shell
        dbt_command(settings, args),
        cwd=settings.project,
        env={**(env if env is not None else os.environ), **settings.meltano_variables()},
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> None:
    """Replace this process with `meltano invoke dbt-<warehouse> ARGS`."""
    try:
        settings = CodeLocationSettings.from_environment()
    except ValueError as exc:
        sys.exit(f"kore-billing-dbt: {exc}")
    command = dbt_command(settings, sys.argv[1:])
    # dagster-dbt gives dbt's target and log paths relative to the dbt project, where it starts
    # this command; Meltano runs from the project's root.
    here = Path.cwd()
    paths = {
        name: str(here / os.environ[name])
        for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH")
        if os.environ.get(name) and not Path(os.environ[name]).is_absolute()
    }
    os.chdir(settings.project)
    env = {**os.environ, **paths, **settings.meltano_variables()}
    os.execvpe(command[0], command, env)  # noqa: S606

"""The code location's settings, from the environment a user sets for Meltano: which Meltano
environment, loader and shards, and when the schedule runs. Unset, it is the local default:
the emulator's demo account into a DuckDB file under output/, in two shards."""

from __future__ import annotations

import os
import typing as t
from dataclasses import dataclass
from pathlib import Path

from tap_kore_billing.orchestration.shards import SHARDS_VARIABLE, ShardPlan, parse_shards

LOCAL_ENVIRONMENT = "sandbox"
LOADER_VARIABLE = "KORE_BILLING_LOADER"
SCHEDULE_VARIABLE = "KORE_BILLING_SCHEDULE"
WORK_DIR_VARIABLE = "KORE_BILLING_WORK_DIR"
DBT_UTILITIES = {
    "target-duckdb": "dbt-duckdb",
    "target-postgres": "dbt-postgres",
    "target-snowflake": "dbt-snowflake",
}
LOCAL_SHARDS = "2"
HOURLY = "0 * * * *"


class CodeLocationSettingError(ValueError):
    """A setting of the code location that cannot be used; the message names it."""


def _meltano_project(given: str | None) -> Path:
    """MELTANO_PROJECT_ROOT, else the nearest folder holding meltano.yml from here upward (dbt
    runs in the project's transform/ folder)."""
    here = Path(given or Path.cwd()).resolve()
    for folder in (here,) if given else (here, *here.parents):
        if (folder / "meltano.yml").is_file():
            return folder
    raise CodeLocationSettingError(
        f"no meltano.yml in {here}{'' if given else ' or above'}: start Dagster in the Meltano "
        "project's folder, or set MELTANO_PROJECT_ROOT"
    )


@dataclass(frozen=True)
class CodeLocationSettings:
    project: Path
    environment: str
    loader: str
    shards: ShardPlan
    schedule: str
    work_dir: Path  # the code location's own files: the dbt manifest; locally the DuckDB file

    @classmethod
    def from_environment(cls, env: t.Mapping[str, str] | None = None) -> CodeLocationSettings:
        env = os.environ if env is None else env
        project = _meltano_project(env.get("MELTANO_PROJECT_ROOT"))
        environment = env.get("MELTANO_ENVIRONMENT") or LOCAL_ENVIRONMENT
        loader = env.get(LOADER_VARIABLE) or "target-duckdb"
        if loader not in DBT_UTILITIES:
            raise CodeLocationSettingError(
                f"{LOADER_VARIABLE}={loader!r}: choose one of {', '.join(DBT_UTILITIES)}"
            )
        default_shards = LOCAL_SHARDS if environment == LOCAL_ENVIRONMENT else "1"
        try:
            shards = parse_shards(env.get(SHARDS_VARIABLE) or default_shards)
        except ValueError as exc:
            raise CodeLocationSettingError(str(exc)) from exc
        schedule = env.get(SCHEDULE_VARIABLE) or HOURLY
        if len(schedule.split()) != 5:
            raise CodeLocationSettingError(
                f"{SCHEDULE_VARIABLE}={schedule!r}: give a cron expression of five fields, "
                f"e.g. {HOURLY!r} (hourly)"
            )
        work_dir = Path(env.get(WORK_DIR_VARIABLE) or project / "output" / "orchestrate")
        return cls(project, environment, loader, shards, schedule, work_dir.resolve())

    @property
    def local(self) -> bool:
        """The emulator's demo account stands in for Kore.ai (Meltano's sandbox environment)."""
        return self.environment == LOCAL_ENVIRONMENT

    @property
    def dbt_utility(self) -> str:
        return DBT_UTILITIES[self.loader]

    def meltano_variables(self) -> dict[str, str]:
        """What every Meltano command of the code location adds to the environment: locally, a
        DuckDB file of its own (the demo's stays the demo's), which dbt-duckdb follows."""
        if self.local and self.loader == "target-duckdb":
            return {"TARGET_DUCKDB_FILEPATH": str(self.work_dir / "kore_billing.duckdb")}
        return {}

    def as_environment(self) -> dict[str, str]:
        """These settings as the variables they are read from, for the commands (such as
        kore-billing-dbt) that read them again."""
        return {
            "MELTANO_PROJECT_ROOT": str(self.project),
            "MELTANO_ENVIRONMENT": self.environment,
            LOADER_VARIABLE: self.loader,
            WORK_DIR_VARIABLE: str(self.work_dir),
        }

    @property
    def one_writer(self) -> bool:
        """DuckDB allows one writer: its shards run one after another."""
        return self.loader == "target-duckdb"

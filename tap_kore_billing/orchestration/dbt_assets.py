"""The dbt package's models, seeds and tests as Dagster assets and checks (dagster-dbt, from
the manifest), downstream of the shards; dbt runs through Meltano's dbt utility."""

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import typing as t
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from tap_kore_billing.orchestration.dbt_command import run_dbt
from tap_kore_billing.orchestration.settings import CodeLocationSettings

DBT_EXECUTABLE = "kore-billing-dbt"  # dbt_command.main: dbt through Meltano's dbt utility
PROJECT_FILES = (
    "models",
    "macros",
    "seeds",
    "snapshots",
    "analyses",
    "tests",
    "profiles",
    "dbt_project.yml",
    "packages.yml",
    "dependencies.yml",
)
# A seam of dagster-dbt 0.29 (tested in tests/orchestration): with dbt-core not importable it
# still tries an in-process dbt adapter (used only to fetch column metadata) and logs this
# warning with an ImportError traceback on every build. dbt runs through Meltano here, so the
# warning is expected and says nothing: it is dropped.
ADAPTER_WARNING = "An error was encountered when creating a handle to the dbt adapter"


class _NoAdapterWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADAPTER_WARNING)


def _drop_adapter_warning() -> None:
    logger = dg.get_dagster_logger()
    if not any(isinstance(f, _NoAdapterWarning) for f in logger.filters):
        logger.addFilter(_NoAdapterWarning())


class ManifestError(RuntimeError):
    """dbt could not parse the project; the message is dbt's."""


def dbt_project_dir(settings: CodeLocationSettings) -> Path:
    return settings.project / "transform"


def prepared_manifest(settings: CodeLocationSettings) -> Path:
    """The project's manifest, parsed again (`dbt parse`) when missing or older than a file of
    the project: the graph Dagster shows is the one dbt builds.

    Every process that loads the code location comes here (each step of the multi-process
    executor, `dagster dev`'s code server, several test workers), possibly at once: dbt parses
    into a folder of this call's own, and the manifest then replaces the old one in one step,
    so a reader sees the old file or the new one, never half of one."""
    target = settings.work_dir / "dbt-manifest" / settings.dbt_utility
    manifest = target / "manifest.json"
    project = dbt_project_dir(settings)
    newest = max(
        (path.stat().st_mtime for name in PROJECT_FILES for path in _files(project / name)),
        default=0.0,
    )
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix="parsing-") as scratch:
        done = run_dbt(settings, ["parse", "--target-path", scratch, "--quiet"])
        parsed = Path(scratch) / "manifest.json"
        if done.returncode != 0 or not parsed.exists():
            lines = (done.stdout + done.stderr).strip().splitlines() or ["no output"]
            raise ManifestError(f"dbt parse of {project} failed: {lines[-1]}")
        os.replace(parsed, manifest)
    return manifest


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` in os.environ (which dagster-dbt hands to dbt) for the block, as before it
    after: a step run in-process (the tests) must not change its caller's environment."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from (p for p in path.rglob("*") if p.is_file())


class ShardedSourcesTranslator(DagsterDbtTranslator):
    """The tap's tables (the package's sources) are what the shards load: a model that reads
    a source depends on every shard instead."""

    def __init__(self, shard_keys: t.Sequence[dg.AssetKey]) -> None:
        super().__init__()
        self.shard_keys = list(shard_keys)

    def get_asset_spec(
        self, manifest: t.Mapping[str, t.Any], unique_id: str, project: t.Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.startswith("source."):
            return spec
        sources = {
            super(ShardedSourcesTranslator, self).get_asset_spec(manifest, uid, project).key
            for uid in manifest["sources"]
        }
        given = list(spec.deps)
        deps = [dep for dep in given if dep.asset_key not in sources]
        if len(deps) < len(given):
            deps += [dg.AssetDep(key) for key in self.shard_keys]
        return spec.replace_attributes(deps=deps, group_name="dbt")


def dbt_definitions(
    settings: CodeLocationSettings, shard_keys: t.Sequence[dg.AssetKey]
) -> tuple[dg.AssetsDefinition, DbtCliResource]:
    """The dbt assets (with dagster-dbt's checks for the package's tests) and their resource."""

    @dbt_assets(
        manifest=prepared_manifest(settings),
        dagster_dbt_translator=ShardedSourcesTranslator(shard_keys),
        name="kore_billing_dbt",
    )
    def _dbt_build(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[t.Any]:
        _drop_adapter_warning()
        with _environment(settings.as_environment()):  # what kore-billing-dbt reads
            yield from dbt.cli(["build"], context=context).stream()

    beside = Path(sys.executable).parent / DBT_EXECUTABLE
    executable = str(beside) if beside.exists() else shutil.which(DBT_EXECUTABLE)
    if executable is None:
        raise ManifestError(
            f"{DBT_EXECUTABLE} is not beside this Python nor on PATH: install the tap's package "
            "(pip install 'tap-kore-billing[orchestrate]') where Dagster runs"
        )
    resource = DbtCliResource(project_dir=str(dbt_project_dir(settings)), dbt_executable=executable)
    return _dbt_build, resource

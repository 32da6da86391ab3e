"""The extract-load assets, one per shard: each a `meltano run` of the tap into the loader with
its own `--state-id-suffix`, its apps chosen by the shard plan. Locally the demo account's
emulator runs for the length of the step."""

import json
import os
import typing as t

import dagster as dg
from dagster import AssetExecutionContext

from tap_kore_billing.orchestration.local_api import api_for
from tap_kore_billing.orchestration.meltano_dirs import shard_sys_dir
from tap_kore_billing.orchestration.meltano_process import (
    EXTRACTOR,
    MeltanoRunFailedError,
    meltano_command,
    run_meltano,
    state_database,
    tap_config,
)
from tap_kore_billing.orchestration.settings import CodeLocationSettings
from tap_kore_billing.orchestration.shards import linked_apps_caveat, shard_settings

RETRIES = 3
FIRST_RETRY_SECONDS = 60  # then 120, 240: a throttled or failing API gets time to recover
FIRST_LOAD_RETRY_SECONDS = 10  # another shard's loader has created the tables by then
RETRY_REASONS = {
    "api": "the tap spent its tries on errors a later run may not meet",
    "first_load": (
        "on a first load, shards' loaders create the same tables at once and one may lose that race"
    ),
}


def shard_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["kore_billing", name])


def state_suffix(name: str) -> str:
    return name.replace("_", "-")


def shard_assets(settings: CodeLocationSettings) -> list[dg.AssetsDefinition]:
    return [_shard_asset(settings, index, name) for index, name in enumerate(settings.shards.names)]


def _shard_asset(settings: CodeLocationSettings, index: int, name: str) -> dg.AssetsDefinition:
    warehouse = settings.loader.removeprefix("target-")

    @dg.asset(
        key=shard_key(name),
        group_name="extract_load",
        kinds={"meltano", warehouse},
        pool=f"kore_billing_{name}",  # one run of a shard at a time (docs/orchestration.md)
        description=(
            f"{name.replace('_', ' ').capitalize()} of {settings.shards.count}: "
            f"`meltano run --state-id-suffix={state_suffix(name)} {EXTRACTOR} {settings.loader}` "
            "for this shard's apps."
        ),
    )
    def _extract_load(context: AssetExecutionContext) -> dg.MaterializeResult:
        with api_for(settings) as (api_variables, account_apps):
            env = {**os.environ, **settings.meltano_variables(), **api_variables}
            try:
                config = tap_config(settings.project, settings.environment, env)
                own_dir = shard_sys_dir(
                    settings.project,
                    settings.work_dir,
                    name,
                    env,
                    state_database(settings.project, env),
                )
            except MeltanoRunFailedError as exc:
                raise dg.Failure(description=str(exc)) from None
            if account_apps:
                config["bot_ids"] = account_apps
            return _run_shard(context, settings, (index, name), {**env, **own_dir}, config)

    return _extract_load


def _run_shard(
    context: AssetExecutionContext,
    settings: CodeLocationSettings,
    shard: tuple[int, str],
    env: dict[str, str],
    config: dict[str, t.Any],
) -> dg.MaterializeResult:
    index, name = shard
    try:
        variables = shard_settings(
            settings.shards, index, config, concurrent=not settings.one_writer
        )
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None
    apps = json.loads(variables.get("TAP_KORE_BILLING_BOT_IDS", "null"))
    if apps == []:
        context.log.info(f"{name}: no app of bot_ids hashes to this shard; nothing to extract")
        return dg.MaterializeResult(metadata={"apps": 0, "sessions_loaded": 0, "requests_made": 0})
    if apps is not None and (caveat := linked_apps_caveat(config)):
        context.log.warning(caveat)
    context.log.info(f"{name}: apps {', '.join(apps) if apps else 'as the settings give them'}")
    command = meltano_command(
        settings.environment,
        ["run", f"--state-id-suffix={state_suffix(name)}", EXTRACTOR, settings.loader],
    )
    try:
        outcome = run_meltano(
            command, project=settings.project, env={**env, **variables}, log=_logger(context)
        )
    except MeltanoRunFailedError as exc:
        if may_retry(exc.retry, context.retry_number, settings):
            wait = retry_wait(exc.retry, context.retry_number)
            context.log.warning(f"{exc}: {RETRY_REASONS[exc.retry or 'api']}; retrying in {wait} s")
            raise dg.RetryRequested(max_retries=RETRIES, seconds_to_wait=wait) from None
        raise dg.Failure(
            description=str(exc), metadata={"exit_code": exc.exit_code}, allow_retries=False
        ) from None
    counted = {"apps": len(apps)} if apps is not None else {}
    return dg.MaterializeResult(
        metadata={
            **counted,
            "sessions_loaded": outcome.records.get("billing_sessions", 0),
            "requests_made": outcome.requests,
            "records": dg.MetadataValue.json(dict(outcome.records)),
            "state_id": (
                f"{settings.environment}:{EXTRACTOR}-to-{settings.loader}:{state_suffix(name)}"
            ),
            "seconds": round(outcome.seconds, 1),
        }
    )


def may_retry(reason: str | None, retry_number: int, settings: CodeLocationSettings) -> bool:
    """Whether another try may pass: the API's troubles up to RETRIES times; the loaders' race
    for the tables once, and only where shards load at once."""
    if reason == "first_load":
        return retry_number == 0 and not settings.one_writer and settings.shards.count > 1
    return reason == "api" and retry_number < RETRIES


def retry_wait(reason: str | None, retry_number: int) -> int:
    if reason == "first_load":
        return FIRST_LOAD_RETRY_SECONDS
    return FIRST_RETRY_SECONDS * 2**retry_number


def _logger(context: AssetExecutionContext) -> t.Callable[[str, str], None]:
    levels = {
        "debug": context.log.debug,
        "info": context.log.info,
        "warning": context.log.warning,
        "error": context.log.error,
    }
    return lambda level, text: levels.get(level, context.log.info)(text)

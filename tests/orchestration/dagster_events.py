"""What the code location's tests share: Dagster's events read back as a user reads them in the
UI (materializations with their metadata, check results, step failures), and Meltano's state."""

from __future__ import annotations

import json
import logging
import typing as t
from dataclasses import dataclass

import dagster as dg
from helpers import ROOT, meltano_in

STATE_ID = "sandbox:tap-kore-billing-to-{loader}:shard-{n}"


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, t.Any]]:
    """Each materialized asset of ours (key as the UI shows it) and its metadata's values."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            done = event.event_specific_data.materialization  # type: ignore[union-attr]
            found[done.asset_key.to_user_string()] = {
                name: value.value for name, value in done.metadata.items()
            }
    return found


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, t.Any]:
    """Every check's evaluation, by `asset:check`."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            done = event.event_specific_data
            found[f"{done.asset_key.to_user_string()}:{done.check_name}"] = done  # type: ignore[union-attr]
    return found


def step_failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step and what the UI shows as its failure: the description it failed with,
    else the error's message."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            told = data.user_failure_data  # type: ignore[union-attr]
            found[str(event.step_key)] = (
                told.description if told and told.description else data.error.message  # type: ignore[union-attr]
            )
    return found


def events_of(instance: dg.DagsterInstance, run_id: str, kind: str) -> list[t.Any]:
    """The run's Dagster events of one kind (STEP_START, ASSET_CHECK_EVALUATION, ...), with
    `step_key`, `timestamp` and `data` (the event's own fields)."""
    found = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type_value == kind:
            data: t.Any = event.event_specific_data
            found.append(Event(str(entry.step_key), entry.timestamp, data))
    return found


@dataclass
class Event:
    step_key: str
    timestamp: float
    data: t.Any


def warnings_logged(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        str(entry.user_message)
        for entry in instance.all_logs(run_id)
        if isinstance(entry.level, int) and entry.level >= logging.WARNING
    ]


def saved_state(env: t.Mapping[str, str], state_id: str) -> dict[str, t.Any]:
    done = meltano_in(ROOT, ["state", "get", state_id], env, check=False)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else {}

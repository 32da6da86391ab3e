"""How a shard's step reads Meltano's JSON log lines (shaped as Meltano 4.4 writes them with
--log-format=json): each at its level, the tap's metrics counted, and a failure told in the
words of the plugin that failed, with the reason a retry may pass when there is one."""

from __future__ import annotations

import json
import typing as t

from tap_kore_billing.orchestration.meltano_process import (
    MeltanoOutcome,
    failure_of,
    take_line,
)

TAP: dict[str, t.Any] = {"string_id": "tap-kore-billing", "producer": True, "consumer": False}
LOADER: dict[str, t.Any] = {"string_id": "target-postgres", "producer": False, "consumer": True}


def line(event: str, level: str = "info", **fields: t.Any) -> str:
    return json.dumps(
        {"event": event, "level": level, "timestamp": "2026-12-07T04:35:53Z", **fields}
    )


def read(*lines: str) -> tuple[MeltanoOutcome, list[tuple[str, str]]]:
    outcome, logged = MeltanoOutcome(), []
    for text in lines:
        take_line(text + "\n", outcome, lambda level, said: logged.append((level, said)))
    return outcome, logged


def test_levels_metrics_and_plain_lines():
    metric = {"type": "counter", "metric": "record_count", "value": 287}
    outcome, logged = read(
        line("No state was found, complete import.", "warning"),
        line("METRIC", metric_info={**metric, "tags": {"stream": "billing_sessions"}}, **TAP),
        line(
            "METRIC",
            metric_info={**metric, "metric": "http_request_count", "value": 6, "tags": {}},
            **TAP,
        ),
        line("Stream billing_sessions done: 287 records", **TAP),
        "a line that is not JSON",
    )
    assert outcome.records["billing_sessions"] == 287
    assert outcome.requests == 6
    assert logged == [
        ("warning", "No state was found, complete import."),
        ("info", "tap-kore-billing: Stream billing_sessions done: 287 records"),
        ("info", "a line that is not JSON"),
    ]


def test_a_tap_that_spent_its_tries_may_pass_later():
    said = "tap-kore-billing failed: request failed after 8 tries in 130 s: HTTP 503"
    outcome, _ = read(line(said, "error", **TAP), line("Extractor failed", "error"))
    failure = failure_of(1, outcome)
    assert (str(failure), failure.retry) == (said, "api")


def test_a_tap_refused_is_not_retried():
    said = "tap-kore-billing failed: request failed: HTTP 401: Unauthorized"
    outcome, _ = read(line(said, "error", **TAP), line("Extractor failed", "error"))
    assert (str(failure_of(1, outcome)), failure_of(1, outcome).retry) == (said, None)


def test_a_stopped_tap_is_not_retried():
    said = "tap-kore-billing stopped by SIGTERM before the run finished (exit 143): ..."
    outcome, _ = read(line(said, "error", **TAP))
    assert failure_of(143, outcome).retry is None


def test_loaders_racing_to_create_tables_on_a_first_load_may_pass_later():
    """Seen with two shards into PostgreSQL at once: one target-postgres loses the race."""
    error = (
        "sqlalchemy.exc.IntegrityError: (psycopg.errors.UniqueViolation) duplicate key value "
        'violates unique constraint "pg_type_typname_nsp_index"'
    )
    outcome, _ = read(
        line("No state was found, complete import.", "warning"),
        line(error, **LOADER),
        line("(Background on this error at: https://sqlalche.me/e/21/gkpj)", **LOADER),
        line("Loader failed", "error"),
        line("Block run completed", "error"),
    )
    failure = failure_of(1, outcome)
    assert str(failure) == f"target-postgres failed: {error}"
    assert failure.retry == "first_load"
    # The same failure with a state already saved is not a race: no retry.
    later, _ = read(line(error, **LOADER), line("Loader failed", "error"))
    assert failure_of(1, later).retry is None


def test_a_lost_race_that_also_failed_the_tap_may_be_retried():
    """Seen in CI: the loader died creating its table, so the tap's output had nowhere to go
    and Meltano's failed block says both failed; the tap itself said nothing."""
    error = (
        "sqlalchemy.exc.IntegrityError: (psycopg.errors.UniqueViolation) duplicate key value "
        'violates unique constraint "pg_type_typname_nsp_index"'
    )
    for ending in (
        [line("Block run completed", "error", success=False, err="Extractor and loader failed")],
        [line("Extractor and loader failed", "error")],
        [line("", "error"), line("", "error")],  # no failure named at all
    ):
        outcome, _ = read(
            line("No state was found, complete import.", "warning"),
            line(error, **LOADER),
            *ending,
        )
        failure = failure_of(1, outcome)
        assert str(failure) == f"target-postgres failed: {error}", ending
        assert failure.retry == "first_load", ending


def test_meltanos_first_error_is_the_one_told():
    outcome, _ = read(
        line("Cannot start plugin tap-kore-billing: Invalid catalog", "error"),
        line("Block run completed", "error"),
    )
    assert str(failure_of(1, outcome)) == "Cannot start plugin tap-kore-billing: Invalid catalog"


def test_a_crash_without_an_error_line_is_told_by_its_last_line():
    outcome, _ = read(
        "Traceback (most recent call last):",
        '  File "meltano/core/job/job.py", line 250, in _heartbeat',
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked",
    )
    assert str(failure_of(1, outcome)) == (
        "meltano exited with code 1: sqlalchemy.exc.OperationalError: "
        "(sqlite3.OperationalError) database is locked"
    )

"""One shard's `meltano run` as the code location runs it (meltano_process.py), against the
emulator into DuckDB: a failure a later try may fix is retryable and one it cannot is not, each
told in the tap's own last line; and a stop that interrupts the step (Dagster's run termination)
stops the tap through the wrapper, so Meltano keeps the state of what it finished."""

from __future__ import annotations

import os
import re
import typing as t

import pytest
from dagster_events import saved_state
from helpers import CAPTURED_OUTPUT, ROOT, SECRETS_SEEN, run_meltano, tap_env

from tap_kore_billing.orchestration.meltano_process import (
    MeltanoRunFailedError,
    install_missing,
    meltano_command,
)
from tap_kore_billing.orchestration.meltano_process import (
    run_meltano as run_shard,
)
from tap_kore_billing.sandbox import Sandbox

STATE_ID = "dev:tap-kore-billing-to-target-duckdb:shard-1"
RUN = ["run", "--state-id-suffix=shard-1", "tap-kore-billing", "target-duckdb"]
QUOTA_WAIT = re.compile(r"Waiting [\d.]+ s for the quota of app")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("meltano-process")
    run_meltano(["install", "tap-kore-billing", "target-duckdb"], work)
    return work


def environment(sb: Sandbox, work, **overrides: str) -> dict[str, str]:
    SECRETS_SEEN.add(sb.client_secret)
    return {
        **os.environ,
        **tap_env(sb),
        "TARGET_DUCKDB_FILEPATH": str(work / "shard.duckdb"),
        "MELTANO_DATABASE_URI": f"sqlite:///{work / 'state.db'}",
        **overrides,
    }


def run(env: t.Mapping[str, str], log: t.Callable[[str, str], None] | None = None):
    lines: list[tuple[str, str]] = []

    def keep(level: str, text: str) -> None:
        lines.append((level, text))
        if log:
            log(level, text)

    try:
        return run_shard(meltano_command("dev", RUN), project=ROOT, env=env, log=keep), lines
    finally:
        CAPTURED_OUTPUT.append("\n".join(text for _, text in lines))


def test_a_failure_that_a_later_try_may_fix_is_retryable(installed, tmp_path):
    with Sandbox(seed=61, apps=1, sessions=50, error_rate=1.0) as sb:
        env = environment(
            sb,
            tmp_path,
            TAP_KORE_BILLING_RETRY_ATTEMPTS="2",
            TAP_KORE_BILLING_RETRY_INITIAL_DELAY="0.05",
        )
        with pytest.raises(MeltanoRunFailedError) as caught:
            run(env)
    assert caught.value.retryable
    assert str(caught.value).startswith("tap-kore-billing failed: request failed after 2 tries")
    assert caught.value.exit_code != 0


def test_a_failure_no_retry_can_fix_is_not(installed, tmp_path):
    with Sandbox(seed=62, apps=1, sessions=50) as sb:
        env = environment(sb, tmp_path, TAP_KORE_BILLING_CLIENT_SECRET="not-the-secret")
        with pytest.raises(MeltanoRunFailedError) as caught:
            run(env)
    assert not caught.value.retryable
    assert "HTTP 401" in str(caught.value)


def test_the_numbers_and_the_levels_come_through(installed, tmp_path):
    with Sandbox(seed=63, apps=2, sessions=300) as sb:
        outcome, lines = run(environment(sb, tmp_path))
        assert outcome.records["billing_sessions"] == len(sb.expected())
        assert (
            outcome.requests == sb.stats()["requests"] - sb.stats().get("token_requests", 0)
            or outcome.requests > 0
        )
    levels = {level for level, _ in lines}
    assert "warning" in levels  # Meltano's "No state was found" on a first run
    assert any(
        text.startswith("tap-kore-billing: Stream billing_sessions done") for _, text in lines
    )
    assert not [text for _, text in lines if text.startswith("{")], "every JSON line was read"


def test_an_interrupted_step_stops_the_tap_and_keeps_its_state(installed, tmp_path):
    """The interrupt arrives while the tap waits for a quota, as Dagster's termination does."""

    def interrupt(_level: str, text: str) -> None:
        if QUOTA_WAIT.search(text) and not interrupted:
            interrupted.append(text)
            raise KeyboardInterrupt

    interrupted: list[str] = []
    with Sandbox(seed=64, apps=2, sessions=3000, max_page_size=50) as sb:
        env = environment(sb, tmp_path, TAP_KORE_BILLING_REQUESTS_PER_MINUTE="8")
        lines: list[tuple[str, str]] = []

        def log(level: str, text: str) -> None:
            lines.append((level, text))
            interrupt(level, text)

        with pytest.raises(KeyboardInterrupt):
            run_shard(meltano_command("dev", RUN), project=ROOT, env=env, log=log)
    said = "\n".join(text for _, text in lines)
    assert interrupted
    assert "tap-kore-billing stopped by SIGTERM" in said
    assert "Incremental state has been updated" in said
    assert '"billing_sessions"' in str(saved_state(env, STATE_ID)).replace("'", '"')


def test_only_plugins_without_a_virtualenv_are_installed_and_a_failure_is_one_line(tmp_path):
    """`make demo` and `make orchestrate` install what is missing and leave the rest alone (a
    reinstall breaks a run of that plugin in another process)."""
    nowhere = tmp_path / "not-a-project"  # no meltano.yml: `meltano install` fails there
    nowhere.mkdir()
    plugins = [("extractors", "tap-kore-billing")]
    env = {**os.environ, "MELTANO_SYS_DIR_ROOT": str(tmp_path / "sys")}
    (tmp_path / "sys" / "extractors" / "tap-kore-billing" / "venv").mkdir(parents=True)
    install_missing(nowhere, env, plugins)  # it has a virtualenv: Meltano is not asked
    (tmp_path / "sys" / "extractors" / "tap-kore-billing" / "venv").rmdir()
    with pytest.raises(MeltanoRunFailedError) as failed:
        install_missing(nowhere, env, plugins)
    assert str(failed.value) == (
        "meltano install tap-kore-billing failed: Error: `meltano install` must be run inside a "
        "Meltano project."
    )
    assert "\n" not in str(failed.value)

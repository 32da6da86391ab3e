"""One `meltano run` for the code location: started through the stoppable wrapper (a stop keeps
the state of what the tap finished), its JSON log lines passed on at their level, the tap's
numbers counted from its Singer metrics, and a failure told in the tap's own last words."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tap_kore_billing.client.api_errors import RETRIES_SPENT

EXTRACTOR = "tap-kore-billing"
STOPPED_EXIT_CODES = (130, 143)
LOADER_FAILED = ("Loader failed", "Extractor and loader failed")
# How long a stopped tap may take to write its last state and the loader to confirm it.
STOP_GRACE_SECONDS = 120.0

Log = t.Callable[[str, str], None]  # (level: debug/info/warning/error, text)


@dataclass
class MeltanoOutcome:
    """What one run did: records per stream, requests the tap sent, its wall time."""

    records: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0
    tap_error: str | None = None
    meltano_error: str | None = None
    loader: str | None = None
    loader_error: str | None = None  # the loader's last line that names an error
    loader_failed: bool = False
    first_load: bool = False  # no state yet: the loader may have created its tables
    last_plain: str | None = None  # the last line that was not Meltano's JSON (a traceback's end)


class MeltanoRunFailedError(Exception):
    """`meltano run` ended non-zero; the message is the tap's last error line (or the
    loader's, or Meltano's). `retry` says why another try may pass: "api" (the tap spent its
    tries on throttling, server or network errors), "first_load" (loaders of several shards
    creating the same tables at once, on their first load), else None."""

    def __init__(self, message: str, *, exit_code: int, retry: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.retry = retry

    @property
    def retryable(self) -> bool:
        return self.retry is not None


def meltano_executable() -> str:
    """The Meltano beside this Python (the virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "meltano"
    return str(beside) if beside.exists() else (shutil.which("meltano") or "meltano")


def config_of(
    plugin: str, project: Path, env: t.Mapping[str, str], environment: str | None = None
) -> dict[str, t.Any]:
    """`meltano config print PLUGIN`: its settings as Meltano resolves them (meltano.yml, .env,
    the environment), secrets masked."""
    chosen = [f"--environment={environment}"] if environment else []
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        [meltano_executable(), *chosen, "config", "print", plugin, "--format=json"],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MeltanoRunFailedError(
            f"meltano config print {plugin} failed: {said}", exit_code=done.returncode
        ) from None


def install_missing(
    project: Path, env: t.Mapping[str, str], plugins: t.Sequence[tuple[str, str]]
) -> None:
    """`meltano install` of those (kind, name) that have no virtualenv yet, under
    MELTANO_SYS_DIR_ROOT or the project's .meltano. Only those: `meltano install` rebuilds a
    plugin even when it is current, which breaks a run of it in another process."""
    base = Path(env.get("MELTANO_SYS_DIR_ROOT") or project / ".meltano")
    missing = [name for kind, name in plugins if not (base / kind / name / "venv").is_dir()]
    if not missing:
        return
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        [meltano_executable(), "install", *missing],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        said = next((line for line in reversed(lines) if line.startswith("Error:")), lines[-1])
        raise MeltanoRunFailedError(
            f"meltano install {' '.join(missing)} failed: {said}", exit_code=done.returncode
        )


def tap_config(project: Path, environment: str, env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """The tap's settings: the shard plan needs bot_ids, api_scope and the quotas."""
    return config_of(EXTRACTOR, project, env, environment)


def state_database(project: Path, env: t.Mapping[str, str]) -> str:
    """The state database Meltano resolves for the project: a shard that gets a `.meltano` of
    its own must still write there."""
    return str(config_of("meltano", project, env)["database_uri"])


def meltano_command(environment: str | None, args: t.Sequence[str]) -> list[str]:
    """`meltano ARGS` through the stoppable wrapper, with JSON logs (levels kept)."""
    chosen = [f"--environment={environment}"] if environment else []
    return [
        sys.executable,
        "-m",
        "tap_kore_billing.meltano_stoppable",
        "--log-format=json",
        *chosen,
        *args,
    ]


def run_meltano(
    command: list[str], *, project: Path, env: t.Mapping[str, str], log: Log
) -> MeltanoOutcome:
    """Run `command` in `project`; raises MeltanoRunFailedError on a non-zero exit. Anything
    that interrupts the wait (Dagster's run termination) stops the tap as a scheduler's stop
    does, waits for the state to be saved, and is raised again."""
    outcome = MeltanoOutcome()
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - our own command line, no shell
        command,
        cwd=project,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        # A terminal's Ctrl-C reaches Dagster alone, which then stops the tap through
        # the wrapper: a signal to the whole group would make the wrapper stop Meltano
        # itself, which loses the last state.
        start_new_session=True,
    )
    try:
        _read(process, outcome, log)
        code = process.wait()
    except BaseException:
        _stop(process, outcome, log)
        raise
    outcome.seconds = time.monotonic() - started
    if code != 0:
        raise failure_of(code, outcome)
    return outcome


def take_line(line: str, outcome: MeltanoOutcome, log: Log) -> None:
    """One line of Meltano's output: counted if it is the tap's metric, else logged."""
    line = line.rstrip("\n")
    if not line.strip():
        return
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        outcome.last_plain = line.strip()
        log("info", line)
        return
    level = str(event.get("level") or "info").lower()
    plugin = event.get("string_id")
    metric = event.get("metric_info")
    if isinstance(metric, dict):
        if plugin == EXTRACTOR:
            _count(metric, outcome)
        return
    said = str(event.get("event", ""))
    text = f"{plugin}: {said}" if plugin else said
    _note(event, said, outcome)
    if level in ("error", "critical") and plugin == EXTRACTOR:
        outcome.tap_error = said  # the tap's last word: its one-line failure
    elif level in ("error", "critical") and not plugin and outcome.meltano_error is None:
        outcome.meltano_error = text  # the first: later ones only say a block failed
    log(level if level in ("debug", "info", "warning", "error") else "error", text)


def _note(event: dict[str, t.Any], said: str, outcome: MeltanoOutcome) -> None:
    """What a failure message needs from Meltano's lines besides the tap's."""
    if event.get("consumer") is True:
        outcome.loader = str(event.get("string_id"))
        if "rror" in said and not said.startswith("(Background on this error"):
            outcome.loader_error = said.strip()
    elif not event.get("string_id"):
        outcome.first_load |= said.startswith("No state was found")
        # Meltano names the loader's failure in the event or in a failed block's `err`; when
        # the tap failed too (its output had nowhere to go) it says both failed.
        outcome.loader_failed |= said in LOADER_FAILED or str(event.get("err")) in LOADER_FAILED


def _count(metric: dict[str, t.Any], outcome: MeltanoOutcome) -> None:
    name, value = metric.get("metric"), metric.get("value")
    tags = metric.get("tags") or {}
    if not isinstance(value, int):
        return
    if name == "record_count":
        outcome.records[str(tags.get("stream"))] += value
    elif name == "http_request_count":
        outcome.requests += value


def failure_of(code: int, outcome: MeltanoOutcome) -> MeltanoRunFailedError:
    # The loader's own error decides when Meltano named it, or when the tap said none: a tap
    # whose loader died fails on its output without a word.
    loader_blamed = outcome.loader_error is not None and (
        outcome.loader_failed or outcome.tap_error is None
    )
    loader_said = f"{outcome.loader} failed: {outcome.loader_error}" if loader_blamed else None
    said = (
        outcome.tap_error
        or loader_said
        or outcome.meltano_error
        or f"meltano exited with code {code}"
        + (f": {outcome.last_plain}" if outcome.last_plain else "")
    )
    retry = None
    if code in STOPPED_EXIT_CODES:
        retry = None
    elif outcome.tap_error is not None:
        retry = "api" if RETRIES_SPENT in outcome.tap_error else None
    elif loader_blamed and outcome.first_load:
        retry = "first_load"
    return MeltanoRunFailedError(said, exit_code=code, retry=retry)


def _read(process: subprocess.Popen[str], outcome: MeltanoOutcome, log: Log) -> None:
    for line in process.stdout or ():
        take_line(line, outcome, log)


def _stop(process: subprocess.Popen[str], outcome: MeltanoOutcome, log: Log) -> None:
    """SIGTERM to the wrapper, which passes it to the tap alone: the tap writes its last state
    and the loader confirms it. Meltano's output is still read (a full pipe would stall it);
    past the grace period a second signal makes Meltano stop everything."""
    if process.poll() is not None:
        return
    log("warning", "stopping the tap: its last state is saved before the step ends")
    process.send_signal(signal.SIGTERM)
    second = threading.Timer(STOP_GRACE_SECONDS, process.send_signal, (signal.SIGTERM,))
    second.start()
    try:
        _read(process, outcome, log)
        process.wait()
    except BaseException:
        process.send_signal(signal.SIGTERM)  # interrupted again: Meltano stops everything now
        raise
    finally:
        second.cancel()

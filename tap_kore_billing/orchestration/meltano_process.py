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

from tap_kore_billing.api_errors import RETRIES_SPENT

EXTRACTOR = "tap-kore-billing"
STOPPED_EXIT_CODES = (130, 143)
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


class MeltanoRunFailedError(Exception):
    """`meltano run` ended non-zero; the message is the tap's last error line (or Meltano's)."""

    def __init__(self, message: str, *, exit_code: int, retryable: bool) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.retryable = retryable


def meltano_executable() -> str:
    """The Meltano beside this Python (the virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "meltano"
    return str(beside) if beside.exists() else (shutil.which("meltano") or "meltano")


def tap_config(project: Path, environment: str, env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """The tap's settings as Meltano resolves them (meltano.yml, .env, the environment), the
    secrets masked: the shard plan needs bot_ids, api_scope and the quotas."""
    command = [meltano_executable(), f"--environment={environment}", "config", "print"]
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        [*command, EXTRACTOR, "--format=json"],
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
            f"meltano config print {EXTRACTOR} failed: {said}",
            exit_code=done.returncode,
            retryable=False,
        ) from None


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
    )
    try:
        _read(process, outcome, log)
        code = process.wait()
    except BaseException:
        _stop(process, outcome, log)
        raise
    outcome.seconds = time.monotonic() - started
    if code != 0:
        raise _failure(code, outcome)
    return outcome


def _take(line: str, outcome: MeltanoOutcome, log: Log) -> None:
    """One line of Meltano's output: counted if it is the tap's metric, else logged."""
    line = line.rstrip("\n")
    if not line.strip():
        return
    try:
        event = json.loads(line)
    except ValueError:
        event = None
    if not isinstance(event, dict):
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
    if level in ("error", "critical"):
        if plugin == EXTRACTOR:
            outcome.tap_error = said  # the tap's last word: its one-line failure
        elif outcome.meltano_error is None:
            outcome.meltano_error = text  # the first: later ones only say a block failed
    log(level if level in ("debug", "info", "warning", "error") else "error", text)


def _count(metric: dict[str, t.Any], outcome: MeltanoOutcome) -> None:
    name, value = metric.get("metric"), metric.get("value")
    tags = metric.get("tags") or {}
    if not isinstance(value, int):
        return
    if name == "record_count":
        outcome.records[str(tags.get("stream"))] += value
    elif name == "http_request_count":
        outcome.requests += value


def _failure(code: int, outcome: MeltanoOutcome) -> MeltanoRunFailedError:
    said = outcome.tap_error or outcome.meltano_error or f"meltano exited with code {code}"
    stopped = code in STOPPED_EXIT_CODES
    retryable = not stopped and outcome.tap_error is not None and RETRIES_SPENT in said
    return MeltanoRunFailedError(said, exit_code=code, retryable=retryable)


def _read(process: subprocess.Popen[str], outcome: MeltanoOutcome, log: Log) -> None:
    for line in process.stdout or ():
        _take(line, outcome, log)


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
    finally:
        second.cancel()

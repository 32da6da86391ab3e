"""The process and emulator harness of the benchmark: everything a section needs to start
the local emulator (`Emulator`, stopped whatever happens), run the tap or the reference extractor
as a child process and read that one process's wall time and rusage (`run_child`, `RunResult`,
`child_env`), write a tap config and a sessions-only catalog (`write_config`, `tap_command`,
`sessions_only_catalog`, `reference_command`), and count or digest the RECORD messages a run wrote
(`read_output`, `Output`). Also `BenchError`, the failure that voids a section, and `progress`,
the stderr line. It knows nothing of the sections' sizes, targets or tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference_extractor.py"
# The emulator's data and the tap's default date range; a section may set its own end_date.
DATA_START = "2024-01-01T00:00:00Z"
DATA_END = "2024-05-01T00:00:00Z"
WINDOW_DAYS = 30

EMULATOR_START_TIMEOUT = 120.0


class BenchError(Exception):
    """A run failed or produced the wrong output; the benchmark's numbers would be meaningless."""


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def find_tool(name: str) -> str:
    # The venv's console scripts sit next to its python; PATH is the fallback.
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


# --- processes ----------------------------------------------------------------------------------


@dataclass
class RunResult:
    wall: float
    exit_code: int
    user: float
    system: float
    maxrss_kib: int  # ru_maxrss is KiB on Linux


# Runs one command and reports its own rusage. A separate, small process because a child's
# ru_maxrss starts at the high-water mark of whatever process forked it (Linux keeps the old
# mm's peak across exec), so spawning straight from this script would report our memory too.
# Its floor is the wrapper's own ~10 MiB. Started with -S: stdlib only.
RUSAGE_WRAPPER = """
import json, os, sys, time
report, *command = sys.argv[1:]
started = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as handle:
    json.dump({"wall": wall, "exit_code": os.waitstatus_to_exitcode(status),
               "user": usage.ru_utime, "system": usage.ru_stime,
               "maxrss_kib": usage.ru_maxrss}, handle)
"""


# Settings of the caller's shell that would make the children unlike a user's run:
# PYTHONUNBUFFERED turns every write into a syscall, PYTHONDONTWRITEBYTECODE recompiles the
# tap's own modules (an editable install) at every start.
DROPPED_ENV = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}


def run_child(command: Sequence[str], stdout: Path, stderr: Path, timeout: float) -> RunResult:
    """Run one process with stdout to a file; wall time and rusage of that process alone."""
    report = stdout.with_suffix(".rusage.json")
    report.unlink(missing_ok=True)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # Own session, so a timeout or Ctrl-C can kill the wrapper and the command together.
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", RUSAGE_WRAPPER, str(report), *command],
            stdout=out,
            stderr=err,
            env=child_env(),
            start_new_session=True,
        )
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout:.0f} s: {shlex.join(command)}") from None
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0 or not report.exists():
        raise BenchError(f"the rusage wrapper failed (exit {proc.returncode})")
    result = RunResult(**json.loads(report.read_text()))
    if result.exit_code != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-5:]
        raise BenchError(
            f"exit {result.exit_code}: {shlex.join(command)}\n    " + "\n    ".join(tail)
        )
    return result


class Emulator:
    """`kore-billing-sandbox --port 0` as a separate process, stopped whatever happens."""

    def __init__(self, workdir: Path, secret: str, **options: object) -> None:
        self.command = [find_tool("kore-billing-sandbox"), "--port", "0"]
        for name, value in options.items():
            self.command += [f"--{name.replace('_', '-')}", str(value)]
        self.workdir = workdir
        self.secret = secret
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def __enter__(self) -> Emulator:
        log = (self.workdir / "emulator.stderr").open("wb")
        # Passed through the environment so the secret never shows up in `ps`.
        env = {**child_env(), "KORE_SANDBOX_CLIENT_SECRET": self.secret}
        # Own session: a Ctrl-C reaches only this script, which then stops the emulator itself.
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
        log.close()
        stdout = self.proc.stdout
        if stdout is None:
            raise BenchError("no pipe to the emulator's stdout")
        try:
            self.info = json.loads(self._first_line(self.proc, stdout))
        except BaseException:
            self.stop()
            raise
        return self

    def _first_line(self, proc: subprocess.Popen, stdout: IO[bytes]) -> bytes:
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                # Generating a large dataset takes a while; the line comes once it is serving.
                if selector.select(timeout=0.5):
                    line = stdout.readline()
                    if line:
                        return line
                if proc.poll() is not None:
                    err = (self.workdir / "emulator.stderr").read_text(errors="replace")
                    raise BenchError(f"emulator exited with {proc.returncode}: {err.strip()}")
        raise BenchError(f"emulator did not start within {EMULATOR_START_TIMEOUT:.0f} s")

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _control(self, method: str, name: str) -> dict:
        request = urllib.request.Request(  # noqa: S310 - our own loopback URL
            f"{self.info['url']}/__sandbox/{name}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stats(self) -> dict:
        return self._control("GET", "stats")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the emulator's process has used so far (Linux; 0 else)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime and stime, fields 14 and 15 of stat(5), in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_stats(self) -> None:
        self._control("POST", "reset_stats")

    def arrivals(self) -> dict[str, list[float]]:
        return self._control("GET", "arrivals")

    def tap_config(self, **settings: object) -> dict:
        return {
            "api_url": self.info["url"],
            "client_id": self.info["client_id"],
            "client_secret": self.secret,
            "api_scope": "bot",
            "bot_ids": self.info["bot_ids"],
            "start_date": DATA_START,
            "end_date": DATA_END,
            "window_days": WINDOW_DAYS,
            "lookback_hours": 0,
            **settings,
        }


# --- output checks ------------------------------------------------------------------------------


@dataclass
class Output:
    records: int
    digest: str = ""


def read_output(path: Path, *, digest: bool = False) -> Output:
    """Count RECORD messages; with `digest`, a hash of the records independent of their order."""
    count = 0
    canonical: list[bytes] = []
    with path.open("rb") as handle:
        for line in handle:
            if b'"RECORD"' not in line:
                continue
            message = orjson.loads(line)
            if message.get("type") != "RECORD":
                continue
            count += 1
            if digest:
                record = message["record"]
                canonical.append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    if not digest:
        return Output(count)
    canonical.sort()
    return Output(count, hashlib.sha256(b"\n".join(canonical)).hexdigest()[:16])


def write_config(workdir: Path, name: str, config: dict) -> Path:
    path = workdir / f"{name}.json"
    path.write_bytes(orjson.dumps(config))
    path.chmod(0o600)
    return path


def tap_command(config: Path) -> list[str]:
    catalog = sessions_only_catalog(config)
    return [find_tool("tap-kore-billing"), "--config", str(config), "--catalog", str(catalog)]


def sessions_only_catalog(config: Path) -> Path:
    """The tap's catalog with billing_sessions alone selected: the benchmarks measure that
    stream (the reference extractor reads only sessions)."""
    done = subprocess.run(
        [find_tool("tap-kore-billing"), "--config", str(config), "--discover"],
        capture_output=True,
        check=True,
    )
    catalog = orjson.loads(done.stdout)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "billing_sessions"
    path = config.with_name(config.stem + "-catalog.json")
    path.write_bytes(orjson.dumps(catalog))
    return path


def reference_command(config: Path) -> list[str]:
    return [sys.executable, str(REFERENCE), "--config", str(config)]

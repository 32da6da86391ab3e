"""Performance benchmark of tap-kore-billing against the local emulator (`make bench`).

Sections, each with its own emulator process:

  cpu         records/second of the tap vs. a bare hand-written extractor, no rate limit
  remote64    64 apps at 60 requests/min, the emulator answering in ~300 ms like a remote API
  remote256   256 apps at 60 requests/min, ~300 ms a request
  loopback64  64 apps at 120 requests/min, answers at loopback speed
  admin       the admin scope (one quota holder for 4 apps) at 60/min and ~300 ms
  pages       requests and sessions/request against a server that caps or refuses big pages
  memory      the tap's peak RSS at two data sizes

The quota sections compare the wall time with the minimum the per-holder limits allow, and
count 429s; the last lines repeat each quota figure beside its minimum.

    python benchmarks/run.py [--quick] [--only SECTION ...] [--repeat N]

Tables go to stdout, progress to stderr. Exit status 0 when every run completed and produced the
expected records (targets missed are reported, not failures), 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import platform
import secrets
import selectors
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO

import orjson

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference_extractor.py"
DATA_START = "2024-01-01T00:00:00Z"
DATA_END = "2024-05-01T00:00:00Z"
QUOTA_DATA_END = "2024-05-03T00:00:00Z"
WINDOW_DAYS = 30
UNLIMITED = 10_000_000  # requests per minute/hour: the client-side limiter never waits

EMULATOR_START_TIMEOUT = 120.0
CPU_RUN_TIMEOUT = 600.0
QUOTA_RUN_TIMEOUT = 900.0
MEMORY_RUN_TIMEOUT = 600.0

CPU_TARGET = 0.85  # reference CPU seconds / tap CPU seconds for the same records
QUOTA_TARGET = 1.2  # unless a case sets its own
MEMORY_TARGET = 1.1


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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join([first, *rest]))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- sections -----------------------------------------------------------------------------------


def cpu_section(workdir: Path, secret: str, quick: bool, repeat: int) -> None:
    sessions = 20_000 if quick else 200_000
    print(
        f"\n== CPU ceiling: {sessions:,} sessions, 1 app, page_size 1000, window_days "
        f"{WINDOW_DAYS}, no rate limit; median of {repeat} alternating runs"
    )
    with Emulator(
        workdir,
        secret,
        sessions=sessions,
        apps=1,
        max_page_size=1000,
        start=DATA_START,
        end=DATA_END,
        seed=1,
    ) as emu:
        config = write_config(
            workdir,
            "cpu",
            emu.tap_config(
                page_size=1000, requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED
            ),
        )
        out, err = workdir / "cpu.jsonl", workdir / "cpu.stderr"
        commands = {"tap": tap_command(config), "reference": reference_command(config)}

        # Unmeasured warm-up: the emulator indexes each window on first use; also the yardstick
        # for the records check.
        progress("warm-up reference run")
        run_child(commands["reference"], out, err, CPU_RUN_TIMEOUT)
        expected = read_output(out, digest=True)

        results: dict[str, list[tuple[RunResult, int]]] = {"tap": [], "reference": []}
        checked = False
        for i in range(repeat):
            for name, command in commands.items():
                emu.reset_stats()
                result = run_child(command, out, err, CPU_RUN_TIMEOUT)
                got = read_output(out, digest=not checked and name == "tap")
                if name == "tap" and not checked:
                    checked = True
                    if (got.records, got.digest) != (expected.records, expected.digest):
                        raise BenchError(
                            f"the tap's records differ from the reference's: {got.records} "
                            f"records (digest {got.digest}) vs {expected.records} "
                            f"({expected.digest})"
                        )
                elif got.records != expected.records:
                    raise BenchError(f"{name} wrote {got.records} records, not {expected.records}")
                requests_made = emu.stats()["requests"]
                results[name].append((result, requests_made))
                progress(
                    f"{name} run {i + 1}/{repeat}: {result.wall:.2f} s, "
                    f"{got.records / result.wall:,.0f} records/s, {requests_made} requests"
                )
            out.unlink()

    rows = []
    medians = {}
    for name, runs in results.items():
        rates = [expected.records / r.wall for r, _ in runs]
        medians[name] = statistics.median(rates)
        rows.append(
            [
                name,
                *(f"{rate:,.0f}" for rate in rates),
                f"{medians[name]:,.0f}",
                f"{statistics.median(r.wall for r, _ in runs):.2f}",
                f"{statistics.median(r.user + r.system for r, _ in runs):.2f}",
                f"{statistics.median(r.maxrss_kib for r, _ in runs) / 1024:.0f}",
                runs[0][1],
            ]
        )
    header = [
        "extractor",
        *(f"run {i + 1} rec/s" for i in range(repeat)),
        "median rec/s",
        "wall s",
        "cpu s",
        "RSS MiB",
        "requests",
    ]
    print(table(header, rows))
    # CPU per record: the tap overlaps requests, so its wall time says less than its CPU.
    cpu = {
        name: statistics.median(r.user + r.system for r, _ in runs)
        for name, runs in results.items()
    }
    ratio = cpu["reference"] / cpu["tap"]
    print(
        f"  records per run: {expected.records:,} (tap's records identical to the reference's: "
        f"yes, digest {expected.digest})"
    )
    print(
        f"  CPU per record, tap/reference: {ratio:.2f} (reference {cpu['reference']:.2f} cpu s, "
        f"tap {cpu['tap']:.2f} cpu s)   target >= {CPU_TARGET}   {verdict(ratio >= CPU_TARGET)}"
    )
    print(
        f"  wall-time records/s, tap/reference: {medians['tap'] / medians['reference']:.2f} "
        "(whole process, start-up included; cpu s = user + system)"
    )
    SUMMARY.append(
        f"CPU per record: reference {cpu['reference']:.2f} s / tap {cpu['tap']:.2f} s = "
        f"{ratio:.2f} x (target >= {CPU_TARGET} x)   {verdict(ratio >= CPU_TARGET)}"
    )


@dataclass(frozen=True)
class QuotaCase:
    """One quota-bound run: how many holders, their limit, and how the API answers."""

    title: str
    apps: int
    per_minute: int
    page: int
    sessions_per_app: int
    latency: float = 0.0  # seconds a request (base plus rows), 0 on loopback
    scope: str = "bot"
    target: float = QUOTA_TARGET

    @property
    def label(self) -> str:
        """Short name of the case for the summary lines."""
        where = f"{self.latency * 1000:.0f} ms" if self.latency else "loopback"
        holders = "admin scope, 1 holder" if self.scope == "admin" else f"{self.apps} apps"
        return f"{holders}, {self.per_minute}/min, {where}"


# One line per quota case run, printed again at the end: "64 apps, 60/min, 300 ms: 63.1 s, quota
# minimum 60.0 s (1.05 x), 0 x 429".
SUMMARY: list[str] = []


# A remote SaaS API: about 300 ms a request (280 ms plus 1 ms a row of a 20-row page), +-20%.
REMOTE_LATENCY = 0.3
LATENCY_PER_ROW = 0.001
LATENCY_JITTER = 0.2

# Each holder needs a bit more than one minute of its quota, so the quotas bind: at 60 a minute
# about 70 requests (20-row pages of 1,300 sessions over 5 windows), at 120 about 135.
QUOTA_CASES = {
    "remote64": QuotaCase(
        "64 apps at 60/min, ~300 ms a request", 64, 60, 20, 1300, REMOTE_LATENCY, target=1.1
    ),
    "remote256": QuotaCase(
        "256 apps at 60/min, ~300 ms a request", 256, 60, 20, 1300, REMOTE_LATENCY, target=1.15
    ),
    "loopback64": QuotaCase("64 apps at 120/min, loopback", 64, 120, 10, 1300, target=1.1),
    "admin": QuotaCase(
        "admin scope (one holder, 4 apps) at 60/min, ~300 ms a request",
        4,
        60,
        20,
        330,
        REMOTE_LATENCY,
        scope="admin",
    ),
}


def quota_section(workdir: Path, secret: str, quick: bool, case: QuotaCase) -> None:
    per_app = max(case.sessions_per_app // 4, 50) if quick else case.sessions_per_app
    sessions = case.apps * per_app
    print(
        f"\n== Quota-bound, {case.title}: {sessions:,} sessions, pages of {case.page} rows, "
        f"api_scope {case.scope}, {case.per_minute} requests/min per quota holder (emulator "
        "and tap, 1,800/hour in the tap), every other setting at its default"
    )
    latency = {}
    if case.latency:
        latency = {
            "latency_seconds": case.latency - case.page * LATENCY_PER_ROW,
            "latency_per_row_seconds": LATENCY_PER_ROW,
            "latency_jitter": LATENCY_JITTER,
        }
        print(
            f"  emulator latency: {latency['latency_seconds'] * 1000:.0f} ms + "
            f"{LATENCY_PER_ROW * 1000:.0f} ms a row, +-{LATENCY_JITTER:.0%}"
        )
    with Emulator(
        workdir,
        secret,
        sessions=sessions,
        apps=case.apps,
        max_page_size=case.page,
        rate_per_minute=case.per_minute,
        rate_per_hour=1800,
        start=DATA_START,
        end=DATA_END,
        seed=2,
        **latency,
    ) as emu:
        config = write_config(
            workdir,
            "quota",
            emu.tap_config(
                api_scope=case.scope,
                page_size=case.page,
                requests_per_minute=case.per_minute,
                # Past the data's end, so sessions that end after it count too: every session
                # the emulator holds is expected.
                end_date=QUOTA_DATA_END,
            ),
        )
        out, err = workdir / "quota.jsonl", workdir / "quota.stderr"
        emu.reset_stats()
        progress(f"tap run (quota-bound; expect about a minute, timeout {QUOTA_RUN_TIMEOUT:.0f} s)")
        emulator_cpu = emu.cpu_seconds()
        result = run_child(tap_command(config), out, err, QUOTA_RUN_TIMEOUT)
        emulator_cpu = emu.cpu_seconds() - emulator_cpu
        stats = emu.stats()
        arrivals = emu.arrivals()
        records = read_output(out).records
        expected = emu.info["visible_sessions"]
        out.unlink()
    by_holder: dict[str, int] = stats["by_holder"]
    # In admin scope with bot_ids, each app's one Get Linked Apps call is app scope.
    bot_ids = emu.info["bot_ids"]
    holders = ["account", *bot_ids] if case.scope == "admin" else bot_ids
    if sorted(by_holder) != sorted(holders):
        raise BenchError(f"unexpected quota holders in the emulator's stats: {by_holder}")
    # Quotas are independent per holder: the slowest bounds the run. Its R-th request may go
    # out once floor((R-1)/N) full minutes of quota have passed.
    minimum = max((r - 1) // case.per_minute * 60.0 for r in by_holder.values())
    counts = sorted(by_holder.values())
    firsts = sorted(times[0] for times in arrivals.values())
    lasts = sorted(times[-1] for times in arrivals.values())
    print(
        f"  records: {records:,} of {expected:,}; requests: {stats['requests']} ({counts[0]} to "
        f"{counts[-1]} per holder), by status {stats['by_status']}"
    )
    print(
        f"  first request of each holder: {firsts[0]:.1f} to {firsts[-1]:.1f} s; last: "
        f"{lasts[0]:.1f} to {lasts[-1]:.1f} s (since the emulator's counters were reset)"
    )
    print(
        f"  at most {stats['max_in_flight']} requests in flight at the emulator, over "
        f"{stats['connections']} HTTP connections; tap peak RSS {result.maxrss_kib / 1024:.1f} MiB"
    )
    print(
        f"  CPU: tap {result.user + result.system:.1f} s, emulator {emulator_cpu:.1f} s "
        f"({(result.user + result.system) * 1000 / stats['requests']:.2f} and "
        f"{emulator_cpu * 1000 / stats['requests']:.2f} ms a request)"
    )
    print(f"  minimum wall time the limits allow: {minimum:.1f} s (holders' quotas in parallel)")
    print(f"  measured wall time:                 {result.wall:.1f} s")
    throttled = stats["throttled"]
    if minimum > 0:
        ratio = result.wall / minimum
        print(
            f"  ratio measured/minimum: {ratio:.2f}   target <= {case.target}   "
            f"{verdict(ratio <= case.target)}"
        )
        SUMMARY.append(
            f"{case.label}: {result.wall:.1f} s, quota minimum {minimum:.1f} s ({ratio:.2f} x, "
            f"target <= {case.target} x), {throttled} x 429   "
            f"{verdict(ratio <= case.target and throttled == 0)}"
        )
    else:
        print("  ratio measured/minimum: n/a (every holder's requests fit in one minute of quota)")
    print(f"  429 responses received: {throttled}   target 0   {verdict(throttled == 0)}")
    if records != expected:
        raise BenchError(f"{records} records written, the emulator holds {expected}")


def page_size_section(workdir: Path, secret: str, quick: bool) -> None:
    sessions = 5_000 if quick else 50_000
    print(
        f"\n== Page size: {sessions:,} sessions, 1 app, default page_size; a server that "
        "accepts 1,000 rows a request, and one that refuses more than 100 (HTTP 400)"
    )
    rows = []
    for label, policy in (("accepts 1,000", "cap"), ("refuses > 100", "reject")):
        with Emulator(
            workdir,
            secret,
            sessions=sessions,
            apps=1,
            max_page_size=1000 if policy == "cap" else 100,
            oversized_limit=policy,
            start=DATA_START,
            end=DATA_END,
            seed=4,
        ) as emu:
            config = write_config(
                workdir,
                "pages",
                emu.tap_config(requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED),
            )
            out, err = workdir / "pages.jsonl", workdir / "pages.stderr"
            emu.reset_stats()
            progress(f"tap run (server {label})")
            run_child(tap_command(config), out, err, CPU_RUN_TIMEOUT)
            stats = emu.stats()
            records = read_output(out).records
            out.unlink()
        refused = stats["by_status"].get("400", 0)
        rows.append(
            [
                label,
                f"{records:,}",
                stats["requests"],
                refused,
                f"{records / stats['requests']:.0f}",
            ]
        )
    print(table(["server", "records", "requests", "refused", "sessions/request"], rows))


def memory_section(workdir: Path, secret: str, quick: bool) -> None:
    sizes = (5_000, 20_000) if quick else (50_000, 200_000)
    print(
        f"\n== Memory: peak RSS (ru_maxrss of each process) at {sizes[0]:,} and "
        f"{sizes[1]:,} sessions, 1 app, page_size 1000, no rate limit"
    )
    rows = []
    peaks = {}
    for sessions in sizes:
        with Emulator(
            workdir,
            secret,
            sessions=sessions,
            apps=1,
            max_page_size=1000,
            start=DATA_START,
            end=DATA_END,
            seed=3,
        ) as emu:
            config = write_config(
                workdir,
                f"memory-{sessions}",
                emu.tap_config(
                    page_size=1000, requests_per_minute=UNLIMITED, requests_per_hour=UNLIMITED
                ),
            )
            out, err = workdir / "memory.jsonl", workdir / "memory.stderr"
            tap = run_child(tap_command(config), out, err, MEMORY_RUN_TIMEOUT)
            records = read_output(out).records
            reference = run_child(reference_command(config), out, err, MEMORY_RUN_TIMEOUT)
            if read_output(out).records != records:
                raise BenchError(f"tap and reference disagree on the record count at {sessions}")
            out.unlink()
        peaks[sessions] = tap.maxrss_kib
        progress(f"{sessions:,} sessions: tap {tap.maxrss_kib / 1024:.1f} MiB")
        rows.append(
            [
                f"{sessions:,}",
                f"{records:,}",
                f"{tap.maxrss_kib / 1024:.1f}",
                f"{reference.maxrss_kib / 1024:.1f}",
            ]
        )
    print(table(["sessions", "records", "tap peak RSS MiB", "reference peak RSS MiB"], rows))
    ratio = peaks[sizes[1]] / peaks[sizes[0]]
    print(
        f"  ratio tap {sizes[1]:,}/{sizes[0]:,}: {ratio:.2f}   target <= {MEMORY_TARGET}   "
        f"{verdict(ratio <= MEMORY_TARGET)}"
    )


# --- main ---------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        sdk = metadata.version("singer-sdk")
    except metadata.PackageNotFoundError:
        sdk = "?"
    return (
        f"machine: {usable} CPUs usable (nproc), {model}; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; singer-sdk {sdk}"
    )


def source_fingerprint() -> str:
    """A hash of the tap's source: the code may change while a long benchmark runs."""
    digest = hashlib.sha256()
    for path in sorted((HERE.parent / "tap_kore_billing").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the emulator and children are stopped on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark tap-kore-billing on the emulator.")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (smoke run)")
    parser.add_argument(
        "--only",
        choices=("cpu", *QUOTA_CASES, "pages", "memory"),
        action="append",
        help="run this section (repeatable); default all",
    )
    parser.add_argument("--repeat", type=int, default=None, help="CPU runs per extractor (3)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    signal.signal(signal.SIGTERM, _terminate)
    # Tables (stdout) and progress (stderr) interleave in order when both go to one terminal/log.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(machine())
    fingerprint = source_fingerprint()
    print(f"tap source: tap_kore_billing/**/*.py sha256 {fingerprint}")
    print("emulator: kore-billing-sandbox on 127.0.0.1, a separate process on the same machine")
    set_here = [name for name in DROPPED_ENV if name in os.environ]
    print(
        f"load average at start: {os.getloadavg()[0]:.2f} (other work on the machine skews "
        f"results); children run without {' and '.join(DROPPED_ENV)}"
        + (f" ({', '.join(set_here)} set in this shell)" if set_here else "")
    )
    secret = secrets.token_hex(32)  # fake credentials for the local emulator only
    sections: dict[str, Callable[[Path], None]] = {
        "cpu": lambda w: cpu_section(w, secret, args.quick, repeat)
    }
    for name, case in QUOTA_CASES.items():
        sections[name] = functools.partial(
            quota_section, secret=secret, quick=args.quick, case=case
        )
    sections["pages"] = lambda w: page_size_section(w, secret, args.quick)
    sections["memory"] = lambda w: memory_section(w, secret, args.quick)
    failed = False
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="kore-bench-") as tmp:
            for name, section in sections.items():
                if args.only and name not in args.only:
                    continue
                try:
                    section(Path(tmp))
                except BenchError as exc:
                    failed = True
                    print(f"  FAILED: {exc}")
                sys.stdout.flush()
    except KeyboardInterrupt:
        print("\ninterrupted; emulator and runs stopped", file=sys.stderr)
        return 130
    if SUMMARY:
        print("\n== Summary (each figure beside its target)")
        for line in SUMMARY:
            print(f"  {line}")
    print(
        f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s; load average at end: "
        f"{os.getloadavg()[0]:.2f}"
    )
    if source_fingerprint() != fingerprint:
        print("WARNING: the tap's source changed during the benchmark; sections may differ")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

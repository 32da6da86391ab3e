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

This file holds the command line, the order of the sections and the lines about the machine
and the tap's source; the sections live in quota_sections.py and unthrottled_sections.py, the
emulator and child processes in emulator_harness.py, tables and the summary in report_format.py.

Tables go to stdout, progress to stderr. Exit status 0 when every run completed and produced the
expected records (targets missed are reported, not failures), 1 otherwise, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import os
import platform
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType

from emulator_harness import DROPPED_ENV, BenchError
from quota_sections import QUOTA_CASES, quota_section
from report_format import print_summary
from unthrottled_sections import cpu_section, memory_section, page_size_section

HERE = Path(__file__).resolve().parent


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
    print_summary()
    print(
        f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s; load average at end: "
        f"{os.getloadavg()[0]:.2f}"
    )
    if source_fingerprint() != fingerprint:
        print("WARNING: the tap's source changed during the benchmark; sections may differ")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

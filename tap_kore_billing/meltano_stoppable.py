"""`meltano ARGS` that, when stopped by SIGTERM or SIGINT, keeps the state of what the tap
finished: use it where a scheduler stops runs (cron, Airflow, Kubernetes) or for Ctrl-C.

    python scripts/meltano_stoppable.py --environment=prod run tap-kore-billing target-postgres
    python -m tap_kore_billing.meltano_stoppable ...   (the same, where the tap is installed)

Why: stopped itself, Meltano 4.4.1 saves no state from the moment of the stop on. It closes the
run's database session first and stops the tap and the loader afterwards, so the STATE the
loader writes while it shuts down fails in Meltano's bookmark writer (DetachedInstanceError,
never shown) and the next run starts from the last state saved before the stop. Stopped here,
the signal goes to the extractor alone: the tap writes its last STATE and exits 143, the loader
reads to the end of its input, loads it and confirms that STATE, and Meltano saves it as on any
failed run ("Incremental state has been updated", then "Extractor failed").

Meltano runs in a session of its own, so a Ctrl-C in the terminal reaches this wrapper only. A
second signal is passed to Meltano itself, which stops everything at once. The exit code is
Meltano's, or 128 + the signal (130, 143) when a stop ended the run, as the tap's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

EXTRACTOR = "tap-kore-billing"


def children(pid: int) -> list[int]:
    """Process IDs whose parent is `pid` (Linux /proc, else `ps`)."""
    tasks = Path(f"/proc/{pid}/task")
    if tasks.is_dir():
        found: list[int] = []
        for task in tasks.iterdir():
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the thread ended meanwhile
                continue
        return found
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid="],  # noqa: S607 - ps from PATH, where /proc is missing
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = (line.split() for line in listing.splitlines())
    return [int(row[0]) for row in rows if len(row) == 2 and int(row[1]) == pid]


def command_line(pid: int) -> list[str]:
    """The process's arguments (Linux /proc, else `ps`, split at spaces)."""
    path = Path(f"/proc/{pid}/cmdline")
    if path.exists():
        try:
            return path.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return []
    listing = subprocess.run(  # noqa: S603 - fixed arguments and a process ID
        ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps from PATH, as above
        capture_output=True,
        text=True,
        check=False,
    )
    return listing.stdout.split()


def extractors(meltano_pid: int) -> list[int]:
    """Meltano's children running the tap: its executable (or the script its Python runs) is
    named after it. Not any argument that merely contains the name: the loader's config path
    does when the project lives in a folder called tap-kore-billing."""
    return [
        pid
        for pid in children(meltano_pid)
        if any(Path(arg).name == EXTRACTOR for arg in command_line(pid)[:2])
    ]


def main(argv: list[str]) -> int:
    """Run `meltano ARGV`; returns Meltano's exit code, or 128 + the signal of a stop."""
    beside = Path(sys.executable).parent / "meltano"  # the virtualenv's, as `make setup` makes
    meltano = str(beside) if beside.exists() else shutil.which("meltano")
    if meltano is None:
        print("meltano_stoppable: no `meltano` next to this Python or on PATH", file=sys.stderr)
        return 127
    # Tells the tap that a stop keeps its state (its last line says so).
    environment = {**os.environ, "KORE_BILLING_STOPPABLE_WRAPPER": "1"}
    process = subprocess.Popen(  # noqa: S603 - the user's own Meltano command line
        [meltano, *argv], start_new_session=True, env=environment
    )
    stopped_by: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        taps = extractors(process.pid)
        if stopped_by or not taps:
            # A second signal, or no tap running (discovery not begun, a dbt block): Meltano
            # stops what runs now.
            process.send_signal(signal.SIGTERM)
        for pid in taps if not stopped_by else ():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:  # it ended meanwhile
                continue
        stopped_by.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    code = process.wait()
    if stopped_by and code != 0:
        return 128 + stopped_by[0]
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A run stopped by SIGINT (Ctrl-C) or SIGTERM (cron, Airflow, Kubernetes, `meltano run`):
the last STATE goes out, one line says so, and the exit code is 128 + the signal (130, 143), so
a scheduler records a stopped run as stopped, not as a success. A second signal stops at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set by scripts/meltano_stoppable.py for the Meltano it starts: a stop reaches the tap alone,
# and Meltano keeps the state the loader confirms.
STOPPABLE_WRAPPER_VARIABLE = "KORE_BILLING_STOPPABLE_WRAPPER"
RESUMES = "; the next run goes on from there"
MELTANO_STATE_CAVEAT = (
    ", but under `meltano run` a stopped Meltano (4.4) may not keep that state, so the next run "
    "may start from an earlier one: stop runs through scripts/meltano_stoppable.py to keep it"
)


def on_stop_signals(logger: logging.Logger, write_last_state: Callable[[], str]) -> None:
    """Replace the SDK's handlers (which exit 0) with ours. `write_last_state` sends the STATE
    that stands and says what it covers."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def stop(signum: int, frame: FrameType | None) -> None:
        code = 128 + signum
        # A second signal stops at once, whatever the interpreter is doing by then (Ctrl-C
        # under Meltano brings SIGINT, then Meltano's SIGTERM milliseconds later).
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_DFL)
        covered = write_last_state()
        logger.error(
            "tap-kore-billing stopped by %s before the run finished (exit %d): %s%s",
            signal.Signals(signum).name,
            code,
            covered,
            MELTANO_STATE_CAVEAT if under_meltano_run_without_wrapper() else RESUMES,
        )
        sys.exit(code)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def under_meltano_run_without_wrapper() -> bool:
    """Whether the tap can tell that `meltano run` (or `meltano el`) started it, not through
    scripts/meltano_stoppable.py: Meltano names its extractor in the environment, and the
    parent process is Meltano's command line. Unknown (no /proc): False."""
    if not os.environ.get("MELTANO_EXTRACTOR_NAME"):
        return False
    if os.environ.get(STOPPABLE_WRAPPER_VARIABLE) == "1":
        return False
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as parent:
            words = parent.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    # `meltano invoke` leaves the state to whoever reads the tap's output.
    return any(word in ("run", "el", "elt") for word in words)

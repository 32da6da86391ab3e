"""A run stopped by SIGINT (Ctrl-C) or SIGTERM (cron, Airflow, Kubernetes, `meltano run`):
the last STATE goes out, one line says so, and the exit code is 128 + the signal (130, 143), so
a scheduler records a stopped run as stopped, not as a success. A second signal stops at once.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
            "tap-kore-billing stopped by %s before the run finished (exit %d): %s",
            signal.Signals(signum).name,
            code,
            covered,
        )
        sys.exit(code)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)

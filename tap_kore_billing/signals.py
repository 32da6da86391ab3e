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


def on_stop_signals(logger: logging.Logger, write_last_state: Callable[[], str]) -> None:
    """Replace the SDK's handlers (which exit 0) with ours. `write_last_state` sends the STATE
    that stands and says what it covers."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        code = 128 + signum
        if stopping:
            os._exit(code)  # the second signal: no more waiting for anything
        stopping = True
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

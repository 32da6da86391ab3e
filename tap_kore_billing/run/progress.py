"""What a long run tells its operator while it runs: a line at least every 30 s per stream
(windows done of total, records, requests, rate, and the time left at the quota's pace), and
at the end one line of counters per partition."""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from dataclasses import dataclass

from tap_kore_billing.core.words import counted

if t.TYPE_CHECKING:
    from collections.abc import Callable

PROGRESS_EVERY_SECONDS = 30.0


@dataclass
class Tally:
    windows: int = 0
    records: int = 0
    requests: int = 0


class RunProgress:
    """One stream's counters during a run, reported from a thread of its own, so a line comes
    even while every request waits for its quota."""

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        *,
        windows: int,
        holders: int,
        requests_per_second: float,
        requests_sent: Callable[[], int],
        notes: dict[str, str] | None = None,
        every: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self._stream = stream
        self._logger = logger
        self._windows = windows
        self._holders = max(holders, 1)
        self._pace = requests_per_second
        self._requests_sent = requests_sent
        self._every = every
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.records = 0
        self.windows_done = 0
        self.partitions: dict[str, Tally] = {}
        # Per partition, what the run set out to read (its range and bookmark).
        self._notes = dict(notes or {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, name="kore-progress", daemon=True)

    @classmethod
    def idle(cls, stream: str, logger: logging.Logger) -> RunProgress:
        """A stream's progress before its run has planned any work."""
        return cls(stream, logger, windows=0, holders=0, requests_per_second=0, requests_sent=int)

    def __enter__(self) -> RunProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def add_records(self, count: int) -> None:
        with self._lock:
            self.records += count

    def window_done(self, partition: str, *, records: int, requests: int) -> None:
        with self._lock:
            self.windows_done += 1
            tally = self.partitions.setdefault(partition, Tally())
            tally.windows += 1
            tally.records += records
            tally.requests += requests

    def line(self) -> str:
        """The progress line, as of now."""
        with self._lock:
            done, records = self.windows_done, self.records
        seconds = time.monotonic() - self._started
        sent = self._requests_sent()
        text = (
            f"Stream {self._stream}: {done}/{counted(self._windows, 'window')}, "
            f"{counted(records, 'record')}, {counted(sent, 'request')} in {seconds:.0f} s "
            f"({records / seconds if seconds else 0:.0f} records/s)"
        )
        left = self.seconds_left(done, sent)
        if left is not None:
            text += f"; about {_duration(left)} left at the quota's pace"
        return text

    def seconds_left(self, done: int, sent: int) -> float | None:
        """The requests still to send, spread over the quota holders at their sustained pace
        (the hourly limit included). Still to send: every window at the requests a finished
        window took, less those already sent, the finished windows' and the ones in flight.
        Each request sent lowers it by one while windows keep their size, so the estimate
        does not grow while the pace holds."""
        with self._lock:
            finished = sum(tally.requests for tally in self.partitions.values())
        if not done or not finished or self._pace <= 0:
            return None
        remaining = max(self._windows * finished / done - sent, 0.0)
        return remaining / (self._holders * self._pace)

    def log_partitions(self) -> None:
        """One line per partition: what it read and what that cost."""
        for partition in sorted(set(self.partitions) | set(self._notes)):
            tally = self.partitions.get(partition, Tally())
            note = self._notes.get(partition)
            self._logger.info(
                "Stream %s, partition %s: %s, %s in %s%s",
                self._stream,
                partition,
                counted(tally.records, "record"),
                counted(tally.requests, "request"),
                counted(tally.windows, "window"),
                f"; {note}" if note else "",
            )

    def _report(self) -> None:
        while not self._stop.wait(self._every):
            self._logger.info("%s", self.line())


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

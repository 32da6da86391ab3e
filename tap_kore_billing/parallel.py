"""Run producer jobs in worker threads and hand their events to one consuming thread.

Partitions have independent API quotas, so fetching them at once shortens quota-bound runs.
Jobs are scheduled request by request, not job by job: a job that yields a `Pause` (its next
request must wait for its quota) is set aside until then, and its worker moves on to a job
whose quota has room. So a small pool keeps every quota holder busy at its own pace, however
many partitions there are. Each job's events stay in order (only one worker advances a job at
a time); only the consumer writes Singer messages, so the output stays whole lines in a valid
order, and the bounded queue keeps memory flat however large the backfill.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import queue
import threading
import time
import typing as t
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

_T = t.TypeVar("_T")
_E = t.TypeVar("_E")

_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Pause:
    """Yielded by a job before a request that counts against `holder`'s quota."""

    holder: str


class _JobFailed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _WorkerEnded:
    pass


class CancelledError(Exception):
    """The consumer has stopped listening."""


def run_parallel(
    jobs: Sequence[_T],
    work: Callable[[_T], Iterator[_E | Pause]],
    *,
    workers: int,
    buffered: int = 8,
    wait_for: Callable[[str], float] | None = None,
) -> Iterator[_E]:
    """Yield every event of every job's iterator, advancing at most `workers` jobs at once.

    `work(job)` is iterated in worker threads. A `Pause` it yields is not passed on: with
    `wait_for(holder)` (seconds until the holder may call) a job that would wait is set aside
    and resumed when its wait is over. Events of one job arrive in their order. The first
    exception a job raises is re-raised here after the other workers were told to stop;
    closing the iterator stops them too. With one job or one worker nothing runs in parallel,
    so the jobs run here, without thread hand-offs.
    """
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            for event in work(job):
                if not isinstance(event, Pause):
                    yield event
        return
    yield from _Scheduler(jobs, work, workers, max(buffered, workers * 2), wait_for).run()


class _Scheduler(t.Generic[_T, _E]):
    def __init__(
        self,
        jobs: Sequence[_T],
        work: Callable[[_T], Iterator[_E | Pause]],
        workers: int,
        buffered: int,
        wait_for: Callable[[str], float] | None,
    ) -> None:
        self.events: queue.Queue[object] = queue.Queue(maxsize=buffered)
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.order = itertools.count()
        # (ready at, tie-breaker, the job's iterator, or None for a job not started yet)
        self.ready: list[tuple[float, int, Iterator[_E | Pause] | None, _T | None]] = [
            (0.0, next(self.order), None, job) for job in jobs
        ]
        self.unfinished = len(jobs)
        self.work = work
        self.wait_for = wait_for
        self.threads = [
            threading.Thread(target=self._worker, name=f"kore-fetch-{i}", daemon=True)
            for i in range(min(workers, len(jobs)))
        ]

    def run(self) -> Iterator[_E]:
        for thread in self.threads:
            thread.start()
        running = len(self.threads)
        try:
            while running:
                event = self.events.get()
                if isinstance(event, _WorkerEnded):
                    running -= 1
                elif isinstance(event, _JobFailed):
                    raise event.error
                else:
                    yield t.cast("_E", event)
        finally:
            self.stop.set()
            with self.cond:
                self.cond.notify_all()
            for thread in self.threads:
                thread.join(timeout=1)
            for _, _, iterator, _ in self.ready:
                # Jobs set aside still hold open work (their `finally` clauses must run).
                if iterator is not None and hasattr(iterator, "close"):
                    with contextlib.suppress(ValueError):
                        iterator.close()

    def _next_job(self) -> tuple[Iterator[_E | Pause] | None, _T | None] | None:
        """The job whose quota is free soonest, once it is; None when all are done."""
        with self.cond:
            while not self.stop.is_set():
                if self.ready:
                    wait = self.ready[0][0] - time.monotonic()
                    if wait <= 0:
                        _, _, iterator, job = heapq.heappop(self.ready)
                        return iterator, job
                    self.cond.wait(timeout=min(wait, _POLL_SECONDS))
                elif self.unfinished == 0:
                    return None
                else:
                    self.cond.wait(timeout=_POLL_SECONDS)
        return None

    def _set_aside(self, iterator: Iterator[_E | Pause], seconds: float) -> None:
        with self.cond:
            heapq.heappush(
                self.ready, (time.monotonic() + seconds, next(self.order), iterator, None)
            )
            self.cond.notify()

    def _worker(self) -> None:
        try:
            while (picked := self._next_job()) is not None:
                iterator, job = picked
                if iterator is None:
                    iterator = iter(self.work(t.cast("_T", job)))
                self._advance(iterator)
            self._put(_WorkerEnded())
        except CancelledError:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            with contextlib.suppress(CancelledError):
                self._put(_JobFailed(exc))

    def _advance(self, iterator: Iterator[_E | Pause]) -> None:
        """Run a job until it finishes or must wait for its quota."""
        try:
            for event in iterator:
                if isinstance(event, Pause):
                    wait = self.wait_for(event.holder) if self.wait_for else 0.0
                    if wait > 0:
                        self._set_aside(iterator, wait)
                        return
                    continue
                self._put(event)
        except CancelledError:
            if hasattr(iterator, "close"):
                iterator.close()
            raise
        with self.cond:
            self.unfinished -= 1
            self.cond.notify_all()

    def _put(self, event: object) -> None:
        while True:
            if self.stop.is_set():
                raise CancelledError
            try:
                self.events.put(event, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return

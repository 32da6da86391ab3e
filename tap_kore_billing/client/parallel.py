"""Run producer jobs in worker threads and hand their events to one consuming thread.

Partitions have independent API quotas, so fetching them at once shortens quota-bound runs.
Jobs are scheduled request by request, not job by job: before each request a job yields a
`Pause`; if another job may call now, it goes back in line (`turns.TurnQueue`: the least spent
holder first, so each holder's first requests of a minute go early), and one whose quota has
no room waits apart until it has. Every job that may call gets a worker at once, up to the
bound (`concurrency`): at a minute boundary as many requests start as the quotas allow.

Each job's events stay in order (only one worker advances a job at a time); only the consumer
writes Singer messages, so the output stays whole lines in a valid order, and the bounded
queue keeps memory flat however large the backfill.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import typing as t
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tap_kore_billing.client.concurrency import in_flight_bound
from tap_kore_billing.client.turns import TurnQueue

if t.TYPE_CHECKING:
    from tap_kore_billing.client.concurrency import InFlight

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
    buffered: int = 16,
    wait_for: Callable[[str], float] | None = None,
    spent: Callable[[str, float], int] | None = None,
    in_flight: InFlight | None = None,
) -> Iterator[_E]:
    """Yield every event of every job's iterator, advancing at most `workers` jobs at once.

    `work(job)` is iterated in worker threads. A `Pause` it yields is not passed on: with
    `wait_for(holder)` (seconds until the holder may call) a job that would wait is set aside
    until its wait is over, and a job goes back in line while another may call; `spent(holder,
    at)` (requests in the holder's rolling window at `at`) orders the line. `in_flight` hears
    each start and end of a job's turn. Events of one job arrive in their order. The first
    exception a job raises is re-raised here after the other workers were told to stop; closing
    the iterator stops them too. With one job or one worker nothing runs in parallel, so the
    jobs run here, without thread hand-offs.
    """
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            for event in work(job):
                if not isinstance(event, Pause):
                    yield event
        return
    yield from _Scheduler(jobs, work, workers, buffered, wait_for, spent, in_flight).run()


# A job in line: its iterator and the holder of the Pause it waits at; or, for a job not
# started yet, None and the job.
_Turn = tuple[Iterator[t.Any] | None, t.Any]


class _Scheduler(t.Generic[_T, _E]):
    def __init__(  # noqa: PLR0917 - private, one call site
        self,
        jobs: Sequence[_T],
        work: Callable[[_T], Iterator[_E | Pause]],
        workers: int,
        buffered: int,
        wait_for: Callable[[str], float] | None,
        spent: Callable[[str, float], int] | None,
        in_flight: InFlight | None,
    ) -> None:
        self.events: queue.Queue[object] = queue.Queue(maxsize=buffered)
        self.stop = threading.Event()
        lock = threading.Lock()
        # Idle workers wait on `idle`, untimed; one of them at most (the timekeeper) waits on
        # `clock` until the next job set aside may call. So a freed job wakes one worker, not
        # every idle one, however many there are.
        self.idle = threading.Condition(lock)
        self.clock = threading.Condition(lock)
        self.idle_waiting = 0
        self.timekeeper = False
        self.line: TurnQueue[_Turn] = TurnQueue()
        started = time.monotonic()
        for job in jobs:
            self.line.push((None, job), ready_at=started, spent=0)
        self.unfinished = len(jobs)
        self.work = work
        self.wait_for = wait_for
        self.spent = spent
        self.in_flight = in_flight
        self.bound = in_flight_bound(workers, len(jobs))
        if in_flight is not None:
            in_flight.bound = self.bound
        self.threads: list[threading.Thread] = []

    def run(self) -> Iterator[_E]:
        for index in range(self.bound):
            thread = threading.Thread(target=self._worker, name=f"kore-fetch-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()
        ended = 0
        try:
            while ended < len(self.threads):
                event = self.events.get()
                if isinstance(event, _WorkerEnded):
                    ended += 1
                elif isinstance(event, _JobFailed):
                    raise event.error
                else:
                    yield t.cast("_E", event)
        finally:
            self.stop.set()
            with self.idle:
                self._wake_all()
            for thread in self.threads:
                thread.join(timeout=1)
            for iterator, _ in self.line.drain():
                # Jobs set aside still hold open work (their `finally` clauses must run).
                if iterator is not None and hasattr(iterator, "close"):
                    with contextlib.suppress(ValueError):
                        iterator.close()

    def _wake_all(self) -> None:
        """Wake every waiting worker (called holding the lock)."""
        self.idle_waiting = 0
        self.idle.notify_all()
        self.clock.notify_all()

    def _wake(self, now: float) -> None:
        """Wake an idle worker for each job that may call, and one to keep time for the jobs
        set aside if nobody does (called holding the lock)."""
        wanted = self.line.ready(now)
        if len(self.line) > wanted and not self.timekeeper:
            wanted += 1
        woken = min(wanted, self.idle_waiting)
        if woken:
            self.idle_waiting -= woken
            self.idle.notify(woken)
        if self.timekeeper:
            self.clock.notify()  # it sets its alarm again: the new job may call earlier

    def _next_job(self) -> _Turn | None:
        """The job whose turn it is, once it may call; None when all are done."""
        with self.idle:
            while not self.stop.is_set():
                if self.unfinished == 0:
                    return None
                now = time.monotonic()
                picked = self.line.pop(now)
                if picked is not None:
                    turn, ready_at = picked
                    if self.in_flight is not None:
                        self.in_flight.started(now - ready_at, self.line.ready(now))
                    self._wake(now)
                    return turn
                next_at = self.line.next_ready_at()
                if next_at is not None and not self.timekeeper:
                    self.timekeeper = True
                    self.clock.wait(timeout=min(max(next_at - now, 0.0), _POLL_SECONDS * 5))
                    self.timekeeper = False
                else:
                    self.idle_waiting += 1
                    self.idle.wait()
        return None

    def _set_aside(self, iterator: Iterator[_E | Pause], holder: str, ready_at: float) -> None:
        spent = self.spent(holder, ready_at) if self.spent is not None else 0
        with self.idle:
            self.line.push((iterator, holder), ready_at=ready_at, spent=spent)
            self._wake(time.monotonic())

    def _others_may_call(self, now: float) -> bool:
        with self.idle:
            return self.line.ready(now) > 0

    def _worker(self) -> None:
        try:
            while (turn := self._next_job()) is not None:
                iterator, job_or_holder = turn
                try:
                    if iterator is None:
                        self._advance(iter(self.work(t.cast("_T", job_or_holder))))
                        continue
                    # A job in line waits at a Pause: resuming it sends its request. Its quota
                    # is asked again, as other partitions of its holder may have spent it.
                    holder = t.cast("str", job_or_holder)
                    wait = self.wait_for(holder) if self.wait_for else 0.0
                    if wait > 0:
                        self._set_aside(iterator, holder, time.monotonic() + wait)
                    else:
                        self._advance(iterator)
                finally:
                    if self.in_flight is not None:
                        self.in_flight.ended()
            self._put(_WorkerEnded())
        except CancelledError:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            with contextlib.suppress(CancelledError):
                self._put(_JobFailed(exc))

    def _advance(self, iterator: Iterator[_E | Pause]) -> None:
        """Run a job until it finishes, or its turn is over at its next request: its quota has
        no room, or another job may call (the line decides who goes next)."""
        try:
            for event in iterator:
                if isinstance(event, Pause):
                    now = time.monotonic()
                    wait = self.wait_for(event.holder) if self.wait_for else 0.0
                    if wait > 0 or self._others_may_call(now):
                        self._set_aside(iterator, event.holder, now + max(wait, 0.0))
                        return
                    continue
                self._put(event)
        except CancelledError:
            if hasattr(iterator, "close"):
                iterator.close()
            raise
        with self.idle:
            self.unfinished -= 1
            if self.unfinished == 0:
                self._wake_all()

    def _put(self, event: object) -> None:
        while True:
            if self.stop.is_set():
                raise CancelledError
            try:
                self.events.put(event, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return

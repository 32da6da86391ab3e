"""Run producer jobs in worker threads and hand their events to one consuming thread.

Partitions have independent API quotas, so fetching them at once shortens quota-bound runs.
Jobs are scheduled request by request, not job by job: before each request a job yields a
`Pause`; the job then goes back in line, behind every job that could call earlier (earliest
next-allowed request first), and one whose quota has no room is set aside until it has. So
every quota holder starts at once and is served in turn, and no app spends its minute while
others wait for theirs. How many workers run follows the observed latency (`InFlight`, Little's
law); the others stay parked, so the busy ones keep their HTTP connections warm.

Each job's events stay in order (only one worker advances a job at a time); only the consumer
writes Singer messages, so the output stays whole lines in a valid order, and the bounded
queue keeps memory flat however large the backfill.
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
    in_flight: InFlight | None = None,
) -> Iterator[_E]:
    """Yield every event of every job's iterator, advancing at most `workers` jobs at once.

    `work(job)` is iterated in worker threads. A `Pause` it yields is not passed on: the job
    goes back in line, and with `wait_for(holder)` (seconds until the holder may call) a job
    that would wait is set aside until its wait is over. With `in_flight`, the number of
    workers advancing jobs follows its target (at most `workers`), fed with the duration of
    each request step. Events of one job arrive in their order. The first exception a job
    raises is re-raised here after the other workers were told to stop; closing the iterator
    stops them too. With one job or one worker nothing runs in parallel, so the jobs run here,
    without thread hand-offs.
    """
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            for event in work(job):
                if not isinstance(event, Pause):
                    yield event
        return
    yield from _Scheduler(jobs, work, workers, buffered, wait_for, in_flight).run()


class _Scheduler(t.Generic[_T, _E]):
    def __init__(  # noqa: PLR0917 - private, one call site
        self,
        jobs: Sequence[_T],
        work: Callable[[_T], Iterator[_E | Pause]],
        workers: int,
        buffered: int,
        wait_for: Callable[[str], float] | None,
        in_flight: InFlight | None,
    ) -> None:
        self.events: queue.Queue[object] = queue.Queue(maxsize=buffered)
        self.stop = threading.Event()
        lock = threading.Lock()
        # Workers that may take jobs wait on `cond`, parked ones on `parked` (one lock): a job
        # set aside wakes one worker that can run it, not one that would go back to sleep.
        self.cond = threading.Condition(lock)
        self.parked = threading.Condition(lock)
        self.order = itertools.count()
        # Jobs in line: (ready at, tie-breaker, the job's iterator and the holder of the Pause
        # it waits at; or, for a job not started yet, None and the job).
        self.ready: list[tuple[float, int, Iterator[_E | Pause] | None, _T | str]] = [
            (0.0, next(self.order), None, job) for job in jobs
        ]
        self.unfinished = len(jobs)
        self.work = work
        self.wait_for = wait_for
        self.in_flight = in_flight
        self.ceiling = min(workers, len(jobs))
        self.target = self.ceiling if in_flight is None else min(self.ceiling, in_flight.target)
        self.threads: list[threading.Thread] = []

    def run(self) -> Iterator[_E]:
        with self.cond:
            self._grow()
        ended = 0
        try:
            while True:
                event = self.events.get()
                if isinstance(event, _WorkerEnded):
                    ended += 1
                    with self.cond:
                        # Workers start only while a job is unfinished, so when every
                        # started one has ended, no other will start.
                        if ended == len(self.threads):
                            break
                elif isinstance(event, _JobFailed):
                    raise event.error
                else:
                    yield t.cast("_E", event)
        finally:
            self.stop.set()
            with self.cond:
                self._wake_all()
                threads = list(self.threads)
            for thread in threads:
                thread.join(timeout=1)
            for _, _, iterator, _ in self.ready:
                # Jobs set aside still hold open work (their `finally` clauses must run).
                if iterator is not None and hasattr(iterator, "close"):
                    with contextlib.suppress(ValueError):
                        iterator.close()

    def _grow(self) -> None:
        """Start workers up to the target (called holding `cond`)."""
        while len(self.threads) < self.target:
            index = len(self.threads)
            thread = threading.Thread(
                target=self._worker, args=(index,), name=f"kore-fetch-{index}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def _step_took(self, seconds: float) -> None:
        if self.in_flight is None:
            return
        target = min(self.ceiling, self.in_flight.observe(seconds))
        if target != self.target:
            with self.cond:
                self.target = target
                self._grow()
                self._wake_all()

    def _wake_all(self) -> None:
        """Wake every worker, parked or not (called holding the lock)."""
        self.cond.notify_all()
        self.parked.notify_all()

    def _next_job(
        self, index: int
    ) -> tuple[float, int, Iterator[_E | Pause] | None, _T | str] | None:
        """The job whose turn it is, once it may call; None when all are done.

        Workers numbered from the target up stay parked: the same few do the work, so their
        connections stay open."""
        with self.cond:
            while not self.stop.is_set():
                if self.unfinished == 0:
                    return None
                if index >= self.target:
                    self.parked.wait(timeout=_POLL_SECONDS)
                elif self.ready:
                    wait = self.ready[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self.ready)
                    self.cond.wait(timeout=min(wait, _POLL_SECONDS))
                else:
                    self.cond.wait(timeout=_POLL_SECONDS)
        return None

    def _set_aside(self, iterator: Iterator[_E | Pause], holder: str, ready_at: float) -> None:
        with self.cond:
            heapq.heappush(self.ready, (ready_at, next(self.order), iterator, holder))
            self.cond.notify()

    def _should_yield_turn(self, index: int, now: float) -> bool:
        """Whether a job waits longer than the running one, or this worker is parked now."""
        with self.cond:
            return index >= self.target or bool(self.ready and self.ready[0][0] <= now)

    def _worker(self, index: int) -> None:
        try:
            while (picked := self._next_job(index)) is not None:
                _, _, iterator, job_or_holder = picked
                if iterator is None:
                    job = t.cast("_T", job_or_holder)
                    self._advance(iter(self.work(job)), index, resumed=False)
                    continue
                # A job in line waits at a Pause: resuming it sends its request. Its quota is
                # asked again, as other partitions of its holder may have spent it meanwhile.
                holder = t.cast("str", job_or_holder)
                wait = self.wait_for(holder) if self.wait_for else 0.0
                if wait > 0:
                    self._set_aside(iterator, holder, time.monotonic() + wait)
                else:
                    self._advance(iterator, index, resumed=True)
            self._put(_WorkerEnded())
        except CancelledError:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            with contextlib.suppress(CancelledError):
                self._put(_JobFailed(exc))

    def _advance(self, iterator: Iterator[_E | Pause], index: int, *, resumed: bool) -> None:
        """Run a job until it finishes, or its turn is over at its next request."""
        # When the current request step began (the job was let past a Pause), if it did.
        step_started = time.monotonic() if resumed else None
        holder_known = resumed
        try:
            for event in iterator:
                if step_started is not None:
                    self._step_took(time.monotonic() - step_started)
                    step_started = None
                if isinstance(event, Pause):
                    if not holder_known and self.in_flight is not None:
                        self.in_flight.job_for(event.holder)
                    holder_known = True
                    now = time.monotonic()
                    wait = self.wait_for(event.holder) if self.wait_for else 0.0
                    if wait > 0 or self._should_yield_turn(index, now):
                        self._set_aside(iterator, event.holder, now + max(wait, 0.0))
                        return
                    step_started = now
                    continue
                self._put(event)
        except CancelledError:
            if hasattr(iterator, "close"):
                iterator.close()
            raise
        if step_started is not None:
            self._step_took(time.monotonic() - step_started)
        with self.cond:
            self.unfinished -= 1
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

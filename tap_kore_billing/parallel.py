"""Run producer jobs in worker threads and hand their events to one consuming thread.

Partitions have independent API quotas, so fetching them at once shortens quota-bound runs;
a worker also fetches its next page while the consumer is still writing the current one. Only
the consumer writes Singer messages, so the output stays whole lines in a valid order, and the
bounded queue keeps memory flat however large the backfill.
"""

from __future__ import annotations

import queue
import threading
import typing as t
from collections.abc import Callable, Iterator, Sequence

_T = t.TypeVar("_T")
_E = t.TypeVar("_E")

_POLL_SECONDS = 0.2


class _JobFailed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _JobEnded:
    pass


class CancelledError(Exception):
    """Raised inside a worker's `emit` once the consumer has stopped listening."""


def run_parallel(
    jobs: Sequence[_T],
    work: Callable[[_T], Iterator[_E]],
    *,
    workers: int,
    buffered: int = 8,
) -> Iterator[_E]:
    """Yield every event of every job's iterator, running at most `workers` jobs at once.

    `work(job)` is iterated in a worker thread. Events of one job arrive in their order. The
    first exception a job raises is re-raised here after the other workers were told to stop;
    closing the iterator stops them too. With one job or one worker nothing runs in parallel,
    so the jobs run here, without thread hand-offs.
    """
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            yield from work(job)
        return
    events: queue.Queue[object] = queue.Queue(maxsize=max(buffered, workers * 2))
    stop = threading.Event()
    pending = list(reversed(jobs))
    lock = threading.Lock()

    def emit(event: _E) -> None:
        while True:
            if stop.is_set():
                raise CancelledError
            try:
                events.put(event, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not pending:
                    break
                job = pending.pop()
            try:
                for event in work(job):
                    emit(event)
            except CancelledError:
                break
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
                _put_until_stopped(events, _JobFailed(exc), stop)
                return
        _put_until_stopped(events, _JobEnded(), stop)

    threads = [
        threading.Thread(target=worker, name=f"kore-fetch-{i}", daemon=True)
        for i in range(min(workers, len(jobs)))
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            event = events.get()
            if isinstance(event, _JobEnded):
                running -= 1
            elif isinstance(event, _JobFailed):
                raise event.error
            else:
                yield t.cast("_E", event)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=1)


def _put_until_stopped(events: queue.Queue[object], event: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            events.put(event, timeout=_POLL_SECONDS)
        except queue.Full:
            continue
        return

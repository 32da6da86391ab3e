"""The worker/consumer plumbing behind parallel partitions."""

from __future__ import annotations

import threading

import pytest

from tap_kore_billing.parallel import run_parallel


def test_every_event_arrives_once_and_each_job_keeps_its_order():
    def work(job, emit):
        for i in range(200):
            emit((job, i))

    events = list(run_parallel(["a", "b", "c", "d", "e"], work, workers=3, buffered=4))
    assert len(events) == 1000
    for job in "abcde":
        assert [i for j, i in events if j == job] == list(range(200))


def test_jobs_really_run_at_the_same_time():
    barrier = threading.Barrier(3, timeout=5)

    def work(job, emit):
        barrier.wait()  # would time out (BrokenBarrierError) if jobs ran one after another
        emit(job)

    assert sorted(run_parallel([1, 2, 3], work, workers=3)) == [1, 2, 3]


def test_a_failing_job_raises_in_the_consumer_and_stops_the_others():
    stopped = threading.Event()

    def work(job, emit):
        if job == "bad":
            raise ValueError("boom")
        try:
            while True:
                emit(job)
        finally:
            stopped.set()

    with pytest.raises(ValueError, match="boom"):
        for _ in run_parallel(["good", "bad"], work, workers=2, buffered=2):
            pass
    assert stopped.wait(timeout=5)


def test_closing_the_consumer_early_stops_the_workers():
    stopped = threading.Event()

    def work(job, emit):
        try:
            while True:
                emit(job)
        finally:
            stopped.set()

    events = run_parallel(["endless"], work, workers=1, buffered=2)
    assert next(events) == "endless"
    events.close()
    assert stopped.wait(timeout=5)


def test_no_jobs_no_events():
    assert list(run_parallel([], lambda job, emit: None, workers=4)) == []

"""The worker/consumer plumbing behind parallel partitions."""

from __future__ import annotations

import threading

import pytest

from tap_kore_billing.client.parallel import Pause, run_parallel


def test_every_event_arrives_once_and_each_job_keeps_its_order():
    def work(job):
        for i in range(200):
            yield (job, i)

    events = list(run_parallel(["a", "b", "c", "d", "e"], work, workers=3, buffered=4))
    assert len(events) == 1000
    for job in "abcde":
        assert [i for j, i in events if j == job] == list(range(200))


def test_jobs_really_run_at_the_same_time():
    barrier = threading.Barrier(3, timeout=5)

    def work(job):
        barrier.wait()  # would time out (BrokenBarrierError) if jobs ran one after another
        yield job

    assert sorted(run_parallel([1, 2, 3], work, workers=3)) == [1, 2, 3]


def test_a_failing_job_raises_in_the_consumer_and_stops_the_others():
    stopped = threading.Event()

    def work(job):
        if job == "bad":
            raise ValueError("boom")
        try:
            while True:
                yield job
        finally:
            stopped.set()

    with pytest.raises(ValueError, match="boom"):
        for _ in run_parallel(["good", "bad"], work, workers=2, buffered=2):
            pass
    assert stopped.wait(timeout=5)


def test_closing_the_consumer_early_stops_the_workers():
    stopped = threading.Event()

    def work(job):
        try:
            while True:
                yield job
        finally:
            stopped.set()

    events = run_parallel(["endless", "other"], work, workers=2, buffered=2)
    assert next(events) == "endless"
    events.close()  # type: ignore[attr-defined]  # a generator
    assert stopped.wait(timeout=5)


def test_no_jobs_no_events():
    assert list(run_parallel([], iter, workers=4)) == []


def test_one_worker_runs_the_jobs_in_order_without_threads():
    def work(job):
        yield (job, threading.current_thread().name)

    here = threading.current_thread().name
    assert list(run_parallel(["a", "b"], work, workers=1)) == [("a", here), ("b", here)]


def test_a_job_waiting_for_its_quota_does_not_hold_a_worker():

    released = threading.Event()

    def wait_for(holder):
        # The "busy" quota has room only once every "free" job has finished.
        return 0.0 if holder == "free" or released.is_set() else 0.05

    finished = []

    def work(job):
        holder = "busy" if job.startswith("busy") else "free"
        for i in range(3):
            yield Pause(holder)
            yield (job, i)
        finished.append(job)
        if sorted(finished) == ["free1", "free2", "free3"]:
            released.set()

    events = list(
        run_parallel(
            ["busy1", "busy2", "free1", "free2", "free3"], work, workers=2, wait_for=wait_for
        )
    )
    # Two workers, two jobs stuck on their quota: the free jobs still ran, and first.
    assert [job for job, _ in events[:9]] == sorted([job for job, _ in events[:9]], key=lambda j: 0)
    assert {job for job, _ in events[:9]} == {"free1", "free2", "free3"}
    for job in ("busy1", "busy2", "free1"):
        assert [i for j, i in events if j == job] == [0, 1, 2]

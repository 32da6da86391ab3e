"""Requests in flight: every partition that may call does, up to a bound, and the run says
when that bound, not the quotas, sets the pace."""

from __future__ import annotations

import threading
import time

from tap_kore_billing.client.concurrency import (
    LATE_SECONDS,
    InFlight,
    bound_decides,
    in_flight_bound,
)
from tap_kore_billing.client.parallel import Pause, run_parallel


def apps(count: int) -> list[str]:
    return [f"app{i}" for i in range(count)]


def test_the_bound_is_max_workers_but_never_more_than_the_partitions():
    assert in_flight_bound(256, 64) == 64  # 64 apps free at once: 64 requests
    assert in_flight_bound(128, 256) == 128
    assert in_flight_bound(32, 1) == 1
    assert in_flight_bound(0, 5) == 1


def test_the_bound_decides_only_when_every_other_slot_is_busy_and_the_wait_is_real():
    assert bound_decides(waited=0.5, busy_others=31, bound=32)
    # A free slot was there: the wait was the machine's, not the bound's.
    assert not bound_decides(waited=0.5, busy_others=20, bound=32)
    # A thread hand-off, not a queue.
    assert not bound_decides(waited=LATE_SECONDS / 10, busy_others=31, bound=32)


def test_the_line_is_said_once_with_the_setting_to_raise():
    said: list[str] = []
    sizing = InFlight(3, on_bound=said.append)
    sizing.bound = 3
    sizing.started(0.0, 0)
    sizing.started(LATE_SECONDS * 3, 4)  # after a wait, but a third slot was free
    assert said == []
    assert not sizing.bound_decided
    sizing.started(LATE_SECONDS * 3, 4)  # every other slot busy, and a real wait
    sizing.ended()
    sizing.started(LATE_SECONDS * 5, 3)
    assert len(said) == 1
    assert "max_workers (3) sets the pace now, not the API quotas" in said[0]
    assert "all 3 requests allowed in flight are busy while 5 partitions" in said[0]
    assert sizing.peak == 3
    assert "the bound set the pace" in sizing.describe()


def test_three_jobs_under_a_bound_of_two_run_on_two_workers():
    def work(job):
        for i in range(3):
            yield Pause(job)
            yield (job, i, threading.current_thread().name)

    bounded = InFlight(2)
    events = list(run_parallel(["a", "b", "c"], work, workers=2, in_flight=bounded))
    assert bounded.bound == 2
    assert {name for _, _, name in events} <= {"kore-fetch-0", "kore-fetch-1"}
    for job in "abc":
        assert [i for j, i, _ in events if j == job] == [0, 1, 2]


def test_a_job_whose_quota_frees_first_is_served_first():
    opens = {"late": time.monotonic() + 0.3, "early": time.monotonic() + 0.1}
    served = []

    def wait_for(holder):
        return max(0.0, opens[holder] - time.monotonic())

    def work(job):
        yield Pause(job)
        served.append(job)
        yield job

    assert list(run_parallel(["late", "early"], work, workers=2, wait_for=wait_for))
    assert served == ["early", "late"]


def test_every_job_that_may_call_gets_a_request_in_flight_up_to_the_bound():
    barrier = threading.Barrier(6, timeout=10)

    def work(job):
        yield Pause(job)
        barrier.wait()  # breaks (BrokenBarrierError) unless all six are in flight at once
        yield job

    sizing = InFlight(64)
    assert sorted(run_parallel(apps(6), work, workers=64, in_flight=sizing)) == apps(6)
    assert sizing.bound == 6  # no more workers than partitions
    assert sizing.peak == 6
    assert not sizing.bound_decided

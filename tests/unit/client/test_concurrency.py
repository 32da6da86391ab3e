"""Requests in flight sized by Little's law, and every job served in turn."""

from __future__ import annotations

import threading
import time

from tap_kore_billing.client.concurrency import FLOOR, SAMPLES, InFlight
from tap_kore_billing.client.parallel import Pause, run_parallel


def apps(count: int) -> list[str]:
    return [f"app{i}" for i in range(count)]


def sized(holders, rate: float, *, ceiling: int) -> InFlight:
    """An InFlight told of one job per entry of `holders`, as the scheduler tells it."""
    sizing = InFlight(rate, ceiling=ceiling)
    for holder in holders:
        sizing.job_for(holder)
    return sizing


def test_64_apps_at_60_a_minute_and_300_ms_need_about_0_6_each_up_to_the_bound():
    roomy = sized(apps(64), 1.0, ceiling=64)
    assert roomy.needed(0.3) == 39  # 64 x 1/s x 0.3 s x 2 (slack)
    assert sized(apps(64), 1.0, ceiling=32).needed(0.3) == 32


def test_a_fast_network_keeps_the_floor():
    assert sized(apps(64), 2.0, ceiling=32).needed(0.005) == FLOOR


def test_one_holder_is_paced_by_its_quota_not_by_its_partitions():
    # Admin scope: eight partitions share the account's minute; one request at a time would do.
    assert sized(["account"] * 8, 1.0, ceiling=32).needed(0.3) == FLOOR


def test_no_holder_gets_more_requests_in_flight_than_it_has_partitions():
    unlimited = sized(["a", "a", "b", "c"], float("inf"), ceiling=32)
    assert unlimited.needed(0.3) == 4
    assert sized(["a", "b"], 1.0, ceiling=2).floor == 2  # never above the bound


def test_the_latency_is_the_lowest_recent_step():
    sizing = sized(apps(64), 1.0, ceiling=64)
    assert sizing.target == FLOOR  # nothing observed yet
    assert sizing.observe(0.3) == 39
    # Steps that queued in the tap (2 s) do not make the API slower.
    assert sizing.observe(2.0) == 39
    assert sizing.latency == 0.3
    for _ in range(SAMPLES):
        sizing.observe(0.6)
    assert sizing.latency == 0.6  # the old best has left the window
    assert sizing.target == 64
    assert sizing.peak == 64
    assert "up to 64 requests in flight" in sizing.describe()


def test_jobs_take_turns_request_by_request():
    def work(job):
        for i in range(3):
            yield Pause(job)
            yield (job, i)

    # One worker runs (the target is 1), so the order is exact: a round per request.
    events = list(
        run_parallel(["a", "b", "c"], work, workers=3, in_flight=InFlight(1.0, ceiling=1))
    )
    assert events == [(job, i) for i in range(3) for job in "abc"]


def test_a_job_whose_quota_frees_first_is_served_first():
    opens = {"late": time.monotonic() + 0.3, "early": time.monotonic() + 0.1}
    served = []

    def wait_for(holder):
        return max(0.0, opens[holder] - time.monotonic())

    def work(job):
        yield Pause(job)
        served.append(job)
        yield job

    sizing = InFlight(1.0, ceiling=1)
    assert list(
        run_parallel(["late", "early"], work, workers=2, wait_for=wait_for, in_flight=sizing)
    )
    assert served == ["early", "late"]


def test_workers_follow_the_target_and_only_the_needed_ones_start():
    names: set[str] = set()
    lock = threading.Lock()
    busy = [0, 0]  # now, most at once

    def work(job, step_seconds):
        for _ in range(4):
            yield Pause(job)
            with lock:
                names.add(threading.current_thread().name)
                busy[0] += 1
                busy[1] = max(busy[1], busy[0])
            time.sleep(step_seconds)  # the request's latency
            with lock:
                busy[0] -= 1
            yield job

    # Fast steps and a slow quota: the floor is enough, no fifth thread starts.
    slow_quota = InFlight(0.01, ceiling=8)
    list(run_parallel(apps(16), lambda j: work(j, 0.0), workers=8, in_flight=slow_quota))
    assert len(names) <= FLOOR
    # 50 ms a request and quotas that allow 100 a second: every worker allowed is needed.
    names.clear()
    busy[1] = 0
    roomy = InFlight(100.0, ceiling=8)
    list(run_parallel(apps(16), lambda j: work(j, 0.05), workers=8, in_flight=roomy))
    assert roomy.peak == 8
    assert roomy.jobs_per_holder == dict.fromkeys(apps(16), 1)  # told by the scheduler
    assert busy[1] > FLOOR
    assert len(names) <= 8

"""The rolling-window limiter, on a fake clock: it must never let a window overflow."""

from tap_kore_billing.client.limiter import RollingLimiter


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def call(limiter, clock, holder="app", duration=0.0):
    """One request: wait for a slot, take `duration` seconds, return when it was sent."""
    with limiter.slot(holder):
        sent = clock.now
        clock.now += duration
    return sent


def test_calls_beyond_the_minute_limit_wait_for_the_oldest_to_roll_out():
    clock = FakeClock()
    limiter = RollingLimiter([(3, 60.0)], clock=clock, sleep=clock.sleep)
    times = [call(limiter, clock) for _ in range(7)]
    assert times[:3] == [1000.0] * 3
    assert times[3] == 1060.0
    # In any 60-second span there are never more than 3 calls.
    for i, t in enumerate(times):
        assert sum(1 for u in times if t <= u < t + 60) <= 3, i


def test_holders_have_independent_budgets():
    clock = FakeClock()
    limiter = RollingLimiter([(2, 60.0)], clock=clock, sleep=clock.sleep)
    for holder in ("a", "a", "b", "b"):
        call(limiter, clock, holder)
    assert clock.now == 1000.0


def test_hour_limit_applies_alongside_the_minute_limit():
    clock = FakeClock()
    limiter = RollingLimiter([(10, 60.0), (12, 3600.0)], clock=clock, sleep=clock.sleep)
    for _ in range(13):
        call(limiter, clock)
    # The 13th call waits for the hour window, not just the minute window.
    assert clock.now >= 1000.0 + 3600.0


def test_a_call_counts_from_its_response_so_slow_calls_cannot_crowd_the_server_window():
    # The server sees each call somewhere between send and response. Counting from the
    # response means the 3rd call is sent 60 s after the 1st call *finished*.
    clock = FakeClock()
    limiter = RollingLimiter([(2, 60.0)], clock=clock, sleep=clock.sleep)
    first = call(limiter, clock, duration=5.0)
    call(limiter, clock, duration=5.0)
    third = call(limiter, clock)
    assert third >= first + 5.0 + 60.0

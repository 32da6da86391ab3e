"""Which partition sends the next request: the line's decisions, without threads or clocks."""

from __future__ import annotations

from tap_kore_billing.client.turns import TurnQueue


def popped(line: TurnQueue[str], now: float) -> list[str]:
    order = []
    while (picked := line.pop(now)) is not None:
        order.append(picked[0])
    return order


def test_a_holder_in_its_first_seconds_goes_before_one_that_has_spent_its_minute():
    line: TurnQueue[str] = TurnQueue()
    line.push("spent 40", ready_at=0.0, spent=40)
    line.push("spent 2", ready_at=5.0, spent=2)
    line.push("spent 0", ready_at=9.0, spent=0)
    # Every one may call at 10 s: the least spent first, whatever the order they came in.
    assert popped(line, 10.0) == ["spent 0", "spent 2", "spent 40"]


def test_equal_spending_goes_by_who_may_call_first_then_by_arrival():
    line: TurnQueue[str] = TurnQueue()
    line.push("b", ready_at=2.0, spent=1)
    line.push("a", ready_at=1.0, spent=1)
    line.push("c", ready_at=2.0, spent=1)
    assert popped(line, 3.0) == ["a", "b", "c"]


def test_a_partition_waiting_for_its_quota_does_not_hold_up_the_line():
    line: TurnQueue[str] = TurnQueue()
    line.push("waits", ready_at=60.0, spent=0)
    line.push("may call", ready_at=1.0, spent=59)
    assert line.ready(2.0) == 1
    assert line.pop(2.0) == ("may call", 1.0)
    assert line.pop(2.0) is None  # the other may not call yet
    assert line.next_ready_at() == 60.0
    assert line.pop(60.0) == ("waits", 60.0)
    assert len(line) == 0
    assert line.next_ready_at() is None


def test_the_longest_wait_for_a_turn_is_measured_from_when_the_quota_allowed():
    line: TurnQueue[str] = TurnQueue()
    assert line.longest_wait(5.0) == 0.0
    line.push("a", ready_at=4.0, spent=0)
    line.push("later", ready_at=10.0, spent=0)
    assert line.longest_wait(5.0) == 1.0  # "later" may not call yet: not waiting for a turn
    assert sorted(line.drain()) == ["a", "later"]
    assert len(line) == 0


def test_at_a_minute_boundary_each_holder_s_early_requests_go_round_by_round():
    # Three holders free at once, none more spent than the others: each sends one request,
    # comes back one request more spent, and waits behind the others.
    line: TurnQueue[str] = TurnQueue()
    spent = dict.fromkeys("xyz", 0)
    for holder in "xyz":
        line.push(holder, ready_at=0.0, spent=0)
    sent = []
    now = 0.0
    for _ in range(6):
        picked = line.pop(now)
        assert picked is not None
        holder = picked[0]
        sent.append(holder)
        spent[holder] += 1
        now += 0.1
        line.push(holder, ready_at=now, spent=spent[holder])
    assert sent == ["x", "y", "z", "x", "y", "z"]

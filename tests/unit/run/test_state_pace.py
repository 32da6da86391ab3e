"""STATE messages at most once a second: each copies the whole state."""

from __future__ import annotations

from tap_kore_billing.run.state_pace import StatePace


def test_the_first_state_goes_out_and_the_next_only_a_second_later():
    pace = StatePace(1.0)
    assert pace.due(100.0)
    assert not pace.due(100.4)  # left pending: the next STATE carries it
    assert not pace.due(100.99)
    assert pace.due(101.0)
    assert not pace.due(101.5)

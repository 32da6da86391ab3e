"""A run's bookmarks: the account's frontier, partitions held back, inherited bookmarks retired."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tap_kore_billing.core.partitions import Partition
from tap_kore_billing.state.bookmarks import PartitionBookmark
from tap_kore_billing.state.run_bookmarks import RunBookmarks, retire_inherited

UTC = timezone.utc
RUN = datetime(2024, 6, 1, tzinfo=UTC)
BUSY, QUIET = Partition("st-busy", None, "bot"), Partition("st-quiet", None, "bot")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_with(clock: Clock) -> RunBookmarks:
    return RunBookmarks(
        {BUSY: PartitionBookmark(), QUIET: PartitionBookmark()},
        run_started_at=RUN,
        lookback=timedelta(hours=1),
        clock=clock,
    )


def test_a_quiet_partition_is_checked_as_far_as_another_partition_showed():
    run = run_with(Clock())
    newest = RUN - timedelta(hours=3)
    run.window_done(BUSY, newest_end=newest, longest=timedelta(0), read_through=RUN)
    quiet = run.window_done(QUIET, newest_end=None, longest=timedelta(0), read_through=RUN)
    assert quiet is not None
    assert quiet.checked_through == newest  # not RUN: the API had published only that far


def test_after_a_long_run_what_others_showed_no_longer_moves_the_frontier():
    clock = Clock()
    run = run_with(clock)
    clock.now = 7200.0  # two hours, longer than the lookback
    run.window_done(
        BUSY, newest_end=RUN - timedelta(hours=3), longest=timedelta(0), read_through=RUN
    )
    assert run.frontier is None
    assert run.last_word([(QUIET, RUN)]) == []


def test_a_held_back_partition_keeps_its_bookmark():
    run = run_with(Clock())
    assert run.hold_back(BUSY) is True
    assert run.hold_back(BUSY) is False  # said once
    assert run.window_done(BUSY, newest_end=RUN, longest=timedelta(0), read_through=RUN) is None
    assert run.bookmarks[BUSY] == PartitionBookmark()


def test_partitions_that_finished_early_catch_up_with_the_last_frontier():
    run = run_with(Clock())
    run.window_done(QUIET, newest_end=None, longest=timedelta(0), read_through=RUN)
    assert run.bookmarks[QUIET].checked_through is None  # nothing shown anywhere yet
    run.window_done(
        BUSY, newest_end=RUN - timedelta(hours=2), longest=timedelta(0), read_through=RUN
    )
    moved = run.last_word([(QUIET, RUN), (BUSY, RUN)])
    assert [p for p, _ in moved] == [QUIET]
    assert run.bookmarks[QUIET].checked_through == RUN - timedelta(hours=2)


def test_inherited_bookmarks_are_retired_once_partitions_have_their_own():
    state: dict = {
        "replication_key": "k",
        "replication_key_value": "2024-01-01T00:00:00Z",
        "partitions": [
            {"context": {"botId": "a"}},
            {"context": {"botId": "a", "channel": "web"}},
            {"context": {"botId": "b"}},
        ],
    }
    assert retire_inherited(state) is True
    assert "replication_key_value" not in state
    assert [p["context"] for p in state["partitions"]] == [
        {"botId": "a", "channel": "web"},
        {"botId": "b"},
    ]
    assert retire_inherited(state) is False

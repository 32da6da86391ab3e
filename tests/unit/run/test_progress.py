"""Progress lines: windows of total, records, requests, rate and the time left at the quota's
pace, from a thread of their own; counters per partition at the end."""

from __future__ import annotations

import itertools
import logging
import threading

from tap_kore_billing.run.progress import RunProgress


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.arrived.set()


def progress(every: float = 3600.0, **overrides: object) -> tuple[RunProgress, Lines]:
    logger = logging.getLogger("test-progress")
    logger.setLevel(logging.INFO)
    lines = Lines()
    logger.handlers = [lines]
    settings: dict = {
        "windows": 10,
        "holders": 2,
        "requests_per_second": 0.5,
        "requests_sent": lambda: 8,
        "every": every,
    }
    settings.update(overrides)
    return RunProgress("billing_sessions", logger, **settings), lines


def test_the_line_counts_what_is_done_and_estimates_the_rest_at_the_quotas_pace():
    run, _ = progress()
    run.add_records(1200)
    for _ in range(4):
        run.window_done("botId=a", records=300, requests=2)
    line = run.line()
    assert line.startswith("Stream billing_sessions: 4/10 windows, 1200 records, 8 requests in ")
    # 6 windows left at 2 requests each, over 2 holders at 0.5 requests/s: 12 s.
    assert run.seconds_left(4, 8) == 12.0
    assert line.endswith("; about 12 s left at the quota's pace")


def test_requests_of_windows_still_in_flight_shorten_the_estimate():
    # 4 windows done at 2 requests each, and 3 more requests sent for windows not done yet.
    run, _ = progress()
    for _ in range(4):
        run.window_done("botId=a", records=300, requests=2)
    assert run.seconds_left(4, 11) == 9.0  # 20 requests in all, 11 sent: 9 over 1 a second


def test_the_estimate_never_grows_while_the_pace_holds():
    """Three apps' windows of three requests each, interleaved and in flight at once, as a run
    does: every request sent lowers the estimate, and finishing a window never raises it."""
    windows, per_window, apps = 12, 3, ("a", "b", "c")
    sent = [0]
    run, _ = progress(windows=windows, holders=3, requests_sent=lambda: sent[0])
    estimates = []
    done = 0
    for _ in range(windows // len(apps)):
        for step in range(per_window):
            for app in apps:
                sent[0] += 1
                if step == per_window - 1:
                    run.window_done(f"botId={app}", records=10, requests=per_window)
                    done += 1
                left = run.seconds_left(done, sent[0])
                if left is not None:
                    estimates.append(left)
    assert estimates, "an estimate once the first window is done"
    assert all(later <= earlier for earlier, later in itertools.pairwise(estimates)), estimates
    assert estimates[-1] == 0


def test_no_estimate_before_the_first_window():
    run, _ = progress()
    assert "left" not in run.line()


def test_lines_come_from_their_own_thread_while_the_run_waits():
    run, lines = progress(every=0.01)
    with run:
        assert lines.arrived.wait(timeout=5)  # nothing else happened meanwhile
    assert lines.lines[0].startswith("Stream billing_sessions: 0/10 windows")


def test_counters_per_partition_at_the_end():
    run, lines = progress()
    run.window_done("botId=a", records=3, requests=1)
    run.window_done("botId=b", records=1, requests=2)
    run.window_done("botId=a", records=2, requests=1)
    run.log_partitions()
    assert lines.lines == [
        "Stream billing_sessions, partition botId=a: 5 records, 2 requests in 2 windows",
        "Stream billing_sessions, partition botId=b: 1 record, 2 requests in 1 window",
    ]


def test_each_partition_says_once_what_it_read_even_with_nothing_to_read():
    notes = {"botId=a": "read 2024-01-01..2024-02-01 (bookmark none)", "botId=b": "nothing to read"}
    run, lines = progress(notes=notes)
    run.window_done("botId=a", records=3, requests=1)
    run.log_partitions()
    assert lines.lines == [
        "Stream billing_sessions, partition botId=a: 3 records, 1 request in 1 window; "
        "read 2024-01-01..2024-02-01 (bookmark none)",
        "Stream billing_sessions, partition botId=b: 0 records, 0 requests in 0 windows; "
        "nothing to read",
    ]

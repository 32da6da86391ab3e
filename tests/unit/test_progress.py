"""Progress lines: windows of total, records, requests, rate and the time left at the quota's
pace, from a thread of their own; counters per partition at the end."""

from __future__ import annotations

import logging
import threading

from tap_kore_billing.progress import RunProgress


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
        "Partition botId=a: 5 records, 2 requests in 2 windows",
        "Partition botId=b: 1 record, 2 requests in 1 window",
    ]

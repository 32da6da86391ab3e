"""The usage summary report job over HTTP: start it (POST), check `.../status` (GET) with a
growing interval until it is done, failed or out of time. The decisions (what a status means,
how long to wait) live in `tap_kore_billing.summary.report`."""

from __future__ import annotations

import threading
import time
import typing as t

from tap_kore_billing.client.api import FallbackPath
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.summary.report import JobState, failure_detail, job_id, job_state, poll_delays

if t.TYPE_CHECKING:
    import logging

    from tap_kore_billing.client.api import ApiCalls

BOT_SUMMARY_PATH = "/api/public/bot/{bot_id}/billingsessionsummary"
ADMIN_SUMMARY_PATH = "/api/public/bots/billingsessionsummary"
# The vendor's endpoint tables show the account-wide path without "/bots".
LEGACY_ADMIN_SUMMARY_PATH = "/api/public/billingsessionsummary"
STATUS_SUFFIX = "/status?type=summary"


class SummaryJobs:
    """Runs report jobs, one at a time per quota holder: the status GET names no job, so only
    an answer carrying the `_id` this run's POST got is read."""

    def __init__(
        self, calls: ApiCalls, logger: logging.Logger, *, poll_seconds: float, timeout: float
    ) -> None:
        self._calls = calls
        self._logger = logger
        self._poll_seconds = poll_seconds
        self._timeout = timeout
        self._admin_path = FallbackPath(ADMIN_SUMMARY_PATH, LEGACY_ADMIN_SUMMARY_PATH)
        self._holder_locks: dict[str, threading.Lock] = {}
        self._holder_locks_lock = threading.Lock()

    def _holder_lock(self, holder: str) -> threading.Lock:
        with self._holder_locks_lock:
            return self._holder_locks.setdefault(holder, threading.Lock())

    def run(
        self, body: dict[str, t.Any], *, bot_id: str | None, holder: str, where: str
    ) -> tuple[dict[str, t.Any], str, int]:
        """Start a job (for app `bot_id`, or account-wide when None) and poll until it is
        done: (the finished answer, its `_id`, GETs made). `where` names the partition and
        window in every error."""
        with self._holder_lock(holder):
            path: str | FallbackPath = (
                BOT_SUMMARY_PATH.format(bot_id=bot_id) if bot_id is not None else self._admin_path
            )
            started = self._calls.call(
                "POST", path, body, holder, where=f"usage summary {where}, starting the job"
            )
            # The status of the path that took the job (after a fallback: the older one).
            base = path.current if isinstance(path, FallbackPath) else path
            ours = job_id(started)
            if ours is None:
                raise TapKoreBillingError(
                    f"usage summary {where}: the API's answer to starting the job carries no "
                    "_id, so its "
                    "result cannot be told from another job's"
                )
            if job_state(started.get("status")) is JobState.FAILED:
                raise TapKoreBillingError(
                    f"usage summary job failed: {where}: {failure_detail(started)} (job {ours}, "
                    "at its start); re-run later"
                )
            return self._poll(base + STATUS_SUFFIX, started, ours, holder, where)

    def _poll(
        self, status_path: str, started: dict[str, t.Any], ours: str, holder: str, where: str
    ) -> tuple[dict[str, t.Any], str, int]:
        deadline = time.monotonic() + self._timeout
        polls = 0
        last_status = started.get("status")
        others: set[str] = set()
        for delay in poll_delays(self._poll_seconds):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(delay, remaining))
            answer = self._calls.call(
                "GET", status_path, None, holder, where=f"usage summary {where}, checking the job"
            )
            polls += 1
            shown = job_id(answer)
            if shown != ours:
                # Another client's job (or an older one): never ours to read.
                if shown is not None and shown not in others:
                    others.add(shown)
                    self._logger.info(
                        "Usage summary %s: the status shows job %s, not ours (%s); waiting",
                        where,
                        shown,
                        ours,
                    )
                continue
            last_status = answer.get("status")
            state = job_state(last_status)
            if state is JobState.DONE:
                return answer, ours, polls
            if state is JobState.FAILED:
                raise TapKoreBillingError(
                    f"usage summary job failed: {where}: {failure_detail(answer)} (job {ours}); "
                    "re-run later"
                )
        shown_other = (
            f"; the status showed other jobs ({', '.join(sorted(others))}): another client "
            "may be running usage summary reports for the same app or account"
            if others
            else ""
        )
        raise TapKoreBillingError(
            f"usage summary job timed out: {where}: still {last_status!r} after "
            f"{self._timeout:g} s and {polls} status checks (job {ours}); raise "
            f"summary_timeout_seconds or re-run later{shown_other}"
        )

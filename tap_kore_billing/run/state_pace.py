"""How often bookmarks go out as STATE messages.

Every STATE message carries the whole state, and singer-sdk copies all of it to write one: with
hundreds of partitions, a STATE after each finished window costs more CPU than the window's
pages. So a STATE goes out when a window moves a bookmark at most once per `SECONDS`; the
bookmarks moved meanwhile wait for the next one, the SDK's every 10,000 records, or the run's
last. A STATE still follows the records it covers: only the checkpoint comes a little later.
"""

from __future__ import annotations

SECONDS = 1.0


class StatePace:
    """Whether a STATE is due, given when the last one went out."""

    def __init__(self, seconds: float = SECONDS) -> None:
        self.seconds = seconds
        self.last: float | None = None

    def due(self, now: float) -> bool:
        """True (and counted as sent) when no STATE went out in the last `seconds`."""
        if self.last is not None and now - self.last < self.seconds:
            return False
        self.last = now
        return True

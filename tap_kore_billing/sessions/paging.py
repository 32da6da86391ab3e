"""Paging through one window of billing sessions: `skip` advances by the rows that arrived
(a server may send fewer than asked), `moreAvailable` says when to stop, and without it an
empty page does. No I/O: the caller's `request(skip)` sends the request."""

from __future__ import annotations

import logging
import time
import typing as t

from tap_kore_billing.core.errors import TapKoreBillingError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROGRESS_LOG_SECONDS = 60.0
Page = tuple[list[dict[str, t.Any]], int, bool]


def pages(
    request: Callable[[int], dict[str, t.Any]], *, where: str, logger: logging.Logger
) -> Iterator[Page | None]:
    """Yield None before each request (the caller may wait for its quota), then (rows,
    requests so far, cut short) for its page. `where` (e.g. "partition botId=x, window ...")
    starts every line about the window. `cut short` is True on an empty page that
    claims more rows: the window ends there, incomplete."""
    skip = 0
    requests_made = 0
    last_progress = time.monotonic()
    while True:
        yield None
        payload = request(skip)
        requests_made += 1
        rows = payload.get("sessions") or []
        if not isinstance(rows, list):
            raise TapKoreBillingError(
                f"{where}, skip {skip}: the response's 'sessions' is not a list"
            )
        more = payload.get("moreAvailable")
        if not rows:
            if more:
                logger.warning(
                    "%s: the API said moreAvailable but sent no rows at skip %d; ending the "
                    "window here",
                    where[:1].upper() + where[1:],
                    skip,
                )
            yield rows, requests_made, bool(more)
            return
        yield rows, requests_made, False
        skip += len(rows)
        if more is False:
            return
        if time.monotonic() - last_progress > PROGRESS_LOG_SECONDS:
            logger.info(
                "%s: %d rows fetched so far in %d requests",
                where[:1].upper() + where[1:],
                skip,
                requests_made,
            )
            last_progress = time.monotonic()

"""The page size a run asks for: `page_size`, unless the server refuses more than the documented
100. The vendor's examples use 100 and its maximum is not documented, so the first large page
is a probe: a refusal (a 400 about the limit, or a 5xx) costs one request, not the run."""

from __future__ import annotations

import threading
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_kore_billing.client.api_errors import ApiRequestError

if t.TYPE_CHECKING:
    import logging

    from tap_kore_billing.client.api import ApiCalls

DOCUMENTED_PAGE_SIZE = 100


class PageSize:
    """The `limit` to ask for, settled by the first request that asks more than 100."""

    def __init__(self, configured: int, calls: ApiCalls, logger: logging.Logger) -> None:
        self.limit = configured
        self._calls = calls
        self._logger = logger
        self._settled = configured <= DOCUMENTED_PAGE_SIZE
        self._lock = threading.Lock()

    def probe(self, path: str, body: dict[str, t.Any], holder: str) -> dict[str, t.Any] | None:
        """Send `body` if the page size is not settled yet: its answer if the server takes the
        large page, None if the caller should send `body` itself (its `limit` is then what to
        ask). Throttling and network faults are waited out and asked again, since they say
        nothing about the page size. One probe at a time, so at most one request is refused
        however many workers there are.

        Raises:
            ApiRequestError, RetriableAPIError, requests.RequestException: as `ApiCalls.once`,
                for failures that are not about the page size, after the last try.
        """
        if self._settled or body["limit"] <= DOCUMENTED_PAGE_SIZE:
            return None
        tries = self._calls.api.max_tries
        with self._lock:
            for attempt in range(tries):
                if self._settled:
                    body["limit"] = self.limit  # another worker's probe settled it meanwhile
                    return None
                try:
                    payload = self._calls.once("POST", path, body, holder)
                except (ApiRequestError, RetriableAPIError, requests.RequestException) as exc:
                    if _refuses_the_page_size(exc):
                        self._fall_back(body, str(exc))
                        return None
                    gives_up = attempt + 1 == tries or self._calls.gives_up(exc)
                    if isinstance(exc, ApiRequestError) or gives_up:
                        raise  # reported like any request that failed or gave up
                    self._calls.pause_before_retry(exc, attempt)
                else:
                    self._settled = True
                    return payload
            return None  # (no tries at all)

    def _fall_back(self, body: dict[str, t.Any], reason: str) -> None:
        self._logger.warning(
            "The API answered page_size %d with %s; using %d, the documented page size, for "
            "the rest of this run (set page_size to %d to skip this check)",
            body["limit"],
            reason,
            DOCUMENTED_PAGE_SIZE,
            DOCUMENTED_PAGE_SIZE,
        )
        self.limit = body["limit"] = DOCUMENTED_PAGE_SIZE
        self._settled = True


def _refuses_the_page_size(exc: Exception) -> bool:
    """A 400 that names the limit, or a 5xx: the server will not send pages this large."""
    if isinstance(exc, ApiRequestError):
        return exc.response.status_code == 400 and "limit" in str(exc).lower()
    # (A Response is falsy for error statuses: compare with None.)
    response = getattr(exc, "response", None)
    return (
        isinstance(exc, RetriableAPIError) and response is not None and response.status_code >= 500
    )

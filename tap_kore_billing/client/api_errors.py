"""What a failed API call says: the API's own message, the status, and what to do next."""

from __future__ import annotations

import json
import socket
from http import HTTPStatus
from urllib.parse import urlparse

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_kore_billing.core.errors import TapKoreBillingError

ADVICE = {
    HTTPStatus.BAD_REQUEST: "the API rejected the request; check start_date, end_date, "
    "window_days and channels",
    HTTPStatus.UNAUTHORIZED: "check client_id/client_secret (or auth_token) and that the app "
    "has the Billing Sessions API scope",
    HTTPStatus.FORBIDDEN: "the credentials may not read this app or scope; check bot_ids, "
    "api_scope and the app's API scopes",
    HTTPStatus.NOT_FOUND: "check api_url and bot_ids",
}

# What a retry may fix: throttling, server errors, network faults, bodies cut off in transit.
RETRIED_ERRORS = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


# How the message of a request whose every try failed on something a retry may fix begins
# (throttling, server errors, network faults): a later run may pass; orchestrators retry it.
RETRIES_SPENT = "request failed after "


class ApiRequestError(FatalAPIError):
    """A 4xx answer that retrying cannot fix; keeps the response for the error message."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {api_error_message(response)}")
        self.response = response


class InvalidResponseBodyError(RetriableAPIError):
    """A 2xx answer whose body is not the JSON object the API sends (e.g. cut off in transit)."""


class RequestFailedError(TapKoreBillingError):
    """A request that failed for good; the message says where, why and what to do."""

    @property
    def status(self) -> int | None:
        """The HTTP status of the answer that ended it (None: no answer, or every try spent
        on one that might have passed)."""
        cause = self.__cause__
        if isinstance(cause, ApiRequestError):
            return int(cause.response.status_code)
        return None


def api_error_message(response: requests.Response) -> str:
    """The API's own `errors[].msg` text, or a short excerpt of the body."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:200].split()) or response.reason or ""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        msgs = [str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in body["errors"]]
        return "; ".join(msgs)
    return json.dumps(body)[:200]


def host_of(exc: BaseException) -> str:
    """The host and port the failed request went to, as `host:port`."""
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None) or ""
    return urlparse(str(url)).netloc or "the host"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, urllib3's `reason` included."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        cause = todo.pop()
        if cause is None or any(cause is f for f in found):
            continue
        found.append(cause)
        todo += [cause.__cause__, cause.__context__, getattr(cause, "reason", None)]
        todo += [arg for arg in cause.args if isinstance(arg, BaseException)]
    return found


def is_connect_failure(exc: BaseException) -> bool:
    """Nothing answered at all: refused, no such host, or no connection within the timeout.
    (A slow answer or a dropped one is not: the server is there.)"""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(c, (ConnectionRefusedError, socket.gaierror)) for c in _causes(exc)
    )


def network_cause(exc: BaseException) -> str:  # noqa: PLR0911 - one sentence per kind
    """A network failure in words, with the host: `connection refused by 127.0.0.1:8765`."""
    host = host_of(exc)
    causes = _causes(exc)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return f"connection refused by {host}"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"no such host: {host}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection to {host} within request_timeout"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer from {host} within request_timeout"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return f"connection reset by {host}"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, InvalidResponseBodyError)):
        return f"an answer from {host} cut off or garbled"
    return f"a network failure talking to {host}"


def describe_failure(exc: BaseException) -> str:
    """One line for a request that failed for good: status, the API's message, what to do."""
    response = getattr(exc, "response", None)
    if response is not None and response.status_code < HTTPStatus.BAD_REQUEST:
        # A 2xx body is data, never quoted: Get Bots' answers hold client secrets.
        return (
            f"HTTP {response.status_code} with a body that is not the JSON object expected: {exc}"
        )
    if response is not None:
        status = response.status_code
        text = f"HTTP {status}: {api_error_message(response)}"
        advice = ADVICE.get(HTTPStatus(status)) if status in HTTPStatus._value2member_map_ else None
        if advice:
            text += f" ({advice})"
        return text
    if isinstance(exc, requests.exceptions.RequestException):
        text = f"{network_cause(exc)} ({type(exc).__name__})"
        if isinstance(exc, requests.exceptions.ConnectionError):
            text += ": check api_url and that the host is reachable"
        return text
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

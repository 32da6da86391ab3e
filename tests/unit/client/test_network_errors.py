"""Network failures in words that name the host, and which of them mean nobody is there."""

from __future__ import annotations

import logging
import socket
import threading
import time

import requests

from tap_kore_billing.client.api import KoreApi
from tap_kore_billing.client.api_errors import describe_failure, is_connect_failure, network_cause
from tap_kore_billing.client.retries import UNREACHABLE_GIVE_UP_SECONDS
from tap_kore_billing.core.words import counted

SETTINGS = {
    "api_url": "http://127.0.0.1:1",
    "auth_token": "not-a-real-token",
    "requests_per_minute": 60,
    "requests_per_hour": 1800,
    "request_timeout": 5,
    "retry_attempts": 8,
    "retry_initial_delay": 1.0,
}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def failure_of(url: str, timeout: float = 2.0) -> requests.RequestException:
    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return exc
    raise AssertionError("the request did not fail")


def test_a_refused_connection_names_the_host_and_counts_as_nobody_there():
    port = closed_port()
    exc = failure_of(f"http://127.0.0.1:{port}/")
    assert network_cause(exc) == f"connection refused by 127.0.0.1:{port}"
    assert is_connect_failure(exc)
    assert describe_failure(exc).startswith(f"connection refused by 127.0.0.1:{port} (")
    assert "check api_url" in describe_failure(exc)


def test_a_server_that_accepts_but_never_answers_is_there_but_slow():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        held: list = []  # the accepted connection stays open, unanswered
        threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
        exc = failure_of(f"http://127.0.0.1:{port}/", timeout=0.3)
    assert isinstance(exc, requests.exceptions.ReadTimeout)
    assert not is_connect_failure(exc)
    assert network_cause(exc) == f"no answer from 127.0.0.1:{port} within request_timeout"


def test_an_unreachable_host_is_retried_then_given_up_after_its_first_unanswered_try():
    calls = KoreApi(SETTINGS, user_agent="test").calls_for(logging.getLogger("test"))
    refused = failure_of(f"http://127.0.0.1:{closed_port()}/")
    # A call that waited long for its quota (or a connect timeout) before its first failure
    # still gets a retry: the clock starts at the first unanswered try.
    calls._call.started = time.monotonic() - 10 * UNREACHABLE_GIVE_UP_SECONDS
    calls._call.unanswered_since = None
    assert not calls.gives_up(refused)
    assert not calls.gives_up(refused)  # right after: still within the time given
    calls._call.unanswered_since = time.monotonic() - UNREACHABLE_GIVE_UP_SECONDS
    assert calls.gives_up(refused)
    # Throttling or a slow server is retried as long as retry_attempts allows.
    slow = requests.exceptions.ReadTimeout("slow")
    assert not calls.gives_up(slow)


def test_counts_agree_with_their_nouns():
    assert counted(1, "request") == "1 request"
    assert counted(2, "request") == "2 requests"
    assert counted(0, "retry") == "0 retries"
    assert counted(3, "partition entry") == "3 partition entries"
    assert counted(1, "status check") == "1 status check"
    assert counted(2, "day") == "2 days"

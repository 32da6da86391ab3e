"""Reading Retry-After: delta seconds or an HTTP date, capped, never negative."""

from __future__ import annotations

import email.utils

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_kore_billing.client.retries import (
    CHECK_MAX_WAIT_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    retry_after_seconds,
)
from tap_kore_billing.tap import TapKoreBilling


def response_with(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    response.headers.update(headers)
    return response


def test_delta_seconds():
    assert retry_after_seconds(response_with({"Retry-After": "17"})) == 17.0


def test_http_date_is_relative_to_now():
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert retry_after_seconds(response_with({"Retry-After": header}), now=now) == 42.0


def test_absent_garbage_or_past_values_mean_no_wait():
    assert retry_after_seconds(None) == 0.0
    assert retry_after_seconds(response_with({})) == 0.0
    assert retry_after_seconds(response_with({"Retry-After": "soon"})) == 0.0
    past = email.utils.formatdate(1_000_000_000, usegmt=True)
    assert retry_after_seconds(response_with({"Retry-After": past}), now=1_700_000_000.0) == 0.0


def test_absurd_values_are_capped_at_an_hour():
    assert retry_after_seconds(response_with({"Retry-After": "86400"})) == MAX_RETRY_AFTER_SECONDS


def test_a_connection_test_waits_a_few_seconds_at_most_between_tries():
    tap = TapKoreBilling(
        config={"start_date": "2024-01-01", "auth_token": "x", "bot_ids": ["st-x"]},
        parse_env_config=False,
    )
    throttled = RetriableAPIError("HTTP 429", response_with({"Retry-After": "3600"}))
    assert tap.api.retry_wait(throttled.response, 0) == 3600.0  # a sync honours the server
    tap.api.checking_connection = True
    assert tap.api.retry_wait(throttled.response, 0) == CHECK_MAX_WAIT_SECONDS

"""Paging through a window: skip advances by what arrived, moreAvailable ends it, an empty
page claiming more rows marks it cut short."""

from __future__ import annotations

import logging

import pytest

from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.sessions.paging import pages

LOG = logging.getLogger("test")


def answers(*payloads: dict):
    asked: list[int] = []
    queue = list(payloads)

    def request(skip: int) -> dict:
        asked.append(skip)
        return queue.pop(0)

    return request, asked


def rows(n: int) -> list[dict]:
    return [{"billingSessionId": str(i)} for i in range(n)]


def test_skip_follows_the_rows_that_arrived_and_more_available_false_stops():
    request, asked = answers(
        {"sessions": rows(3), "moreAvailable": True},
        {"sessions": rows(2), "moreAvailable": False},
    )
    out = list(pages(request, where="partition p, window w", logger=LOG))
    assert out[0] is None  # a pause before each request
    assert out[2] is None
    assert [(len(p[0]), p[1], p[2]) for p in out if p is not None] == [(3, 1, False), (2, 2, False)]
    assert asked == [0, 3]


def test_without_the_flag_an_empty_page_ends_the_window_complete():
    request, asked = answers({"sessions": rows(2)}, {"sessions": []})
    out = [p for p in pages(request, where="w", logger=LOG) if p is not None]
    assert out[-1] == ([], 2, False)
    assert asked == [0, 2]


def test_an_empty_page_that_claims_more_is_cut_short(caplog):
    request, _ = answers({"sessions": [], "moreAvailable": True})
    with caplog.at_level(logging.WARNING):
        out = [p for p in pages(request, where="partition x, window y", logger=LOG) if p]
    assert out == [([], 1, True)]
    assert "Partition x, window y: the API said moreAvailable but sent no rows" in caplog.text


def test_sessions_that_are_not_a_list_are_named():
    request, _ = answers({"sessions": {"a": 1}})
    with pytest.raises(
        TapKoreBillingError, match=r"partition x, skip 0: .*'sessions' is not a list"
    ):
        list(pages(request, where="partition x", logger=LOG))

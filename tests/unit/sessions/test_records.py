"""Session rows as records: every field, datetimes as ISO 8601 UTC, values as text."""

from __future__ import annotations

import logging

import pytest

from tap_kore_billing.core.datetimes import UTC
from tap_kore_billing.core.errors import TapKoreBillingError
from tap_kore_billing.core.partitions import Partition
from tap_kore_billing.sessions.records import DATETIME_FIELDS, SessionRecords

FIELDS = ("billingSessionId", "botId", "channel", "koreUserId", *DATETIME_FIELDS)
PARTITION = Partition("st-1", None, "bot")


def converter() -> SessionRecords:
    return SessionRecords(FIELDS, UTC, "UTC", logging.getLogger("test"))


def row(session_id: str, *times: str | None, **other: object) -> dict[str, object]:
    return {"billingSessionId": session_id, "botId": "st-1", "channel": "rtm", **other} | dict(
        zip(DATETIME_FIELDS, times, strict=True)
    )


def test_a_conversation_s_billing_sessions_share_datetimes_and_each_gets_its_own_value():
    # Two 15-minute billing sessions of one conversation: the second starts where the first
    # ends, both repeat the conversation's start and end.
    rows = [
        row("a", "01-14-2024 4:20:13 pm", "01-14-2024 4:37:48 pm", "01-14-2024 4:20:13 pm",
            "01-14-2024 4:35:13 pm"),
        row("b", "01-14-2024 4:20:13 pm", "01-14-2024 4:37:48 pm", "01-14-2024 4:35:13 pm",
            "01-14-2024 4:37:48 pm"),
    ]  # fmt: skip
    first, second = converter().of_page(rows, PARTITION)
    assert [first[f] for f in DATETIME_FIELDS] == [
        "2024-01-14T16:20:13+00:00",
        "2024-01-14T16:37:48+00:00",
        "2024-01-14T16:20:13+00:00",
        "2024-01-14T16:35:13+00:00",
    ]
    assert [second[f] for f in DATETIME_FIELDS] == [
        "2024-01-14T16:20:13+00:00",
        "2024-01-14T16:37:48+00:00",
        "2024-01-14T16:35:13+00:00",
        "2024-01-14T16:37:48+00:00",
    ]
    assert first["koreUserId"] is None  # absent: null, not missing


def test_values_that_are_not_text_are_kept_as_text_and_empty_datetimes_are_null():
    rows = [row("c", "", None, "01-14-2024 4:20:13 pm", "01-14-2024 4:35:13 pm", koreUserId=7)]
    (record,) = converter().of_page(rows, PARTITION)
    assert record["koreUserId"] == "7"
    assert record["conversationSessionStartDateTime"] is None
    assert record["conversationSessionEndDateTime"] is None


def test_an_unparseable_datetime_names_its_record_and_field():
    rows = [row("d", "yesterday", None, None, None)]
    with pytest.raises(TapKoreBillingError, match="billingSessionId=d: cannot parse"):
        converter().of_page(rows, PARTITION)
